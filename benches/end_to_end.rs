//! End-to-end throughput of `create` (into a fresh encrypted repository) and `restore`, on the
//! small generated phone folder. `cargo bench --bench end_to_end`.

#[path = "../tests/common/phone.rs"]
mod phone;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use snap::crypto::keyfile::KdfParams;
use snap::ops::{Silent, create, restore};
use snap::repo::{InitOptions, Repository};
use snap::store::open_backend;

const FAST_KDF: KdfParams = KdfParams { memory_kib: 1024, iterations: 1, parallelism: 1 };

fn new_repo(dir: &std::path::Path) -> Repository {
    let backend = open_backend(dir.to_str().unwrap_or_default(), &Default::default()).expect("backend");
    Repository::init(
        backend,
        Some(&snap::crypto::keyfile::Credential::password("bench")),
        &InitOptions { encryption: true, kdf: FAST_KDF, append_only: false },
    )
    .expect("init")
}

fn end_to_end(c: &mut Criterion) {
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("phone");
    let bytes = phone::generate(&source, &phone::PhoneSpec::small()).expect("generate");
    let options = create::CreateOptions {
        paths: vec![source.clone()],
        excludes: Vec::new(),
        tags: Vec::new(),
        hostname: Some("bench".into()),
        parent: None,
        compression_level: snap::compress::DEFAULT_LEVEL,
        retry_lock: std::time::Duration::ZERO,
    };

    let mut g = c.benchmark_group("end to end");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("create, fresh repository", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir_in(work.path()).expect("repo dir");
                let repo = new_repo(&dir.path().join("repo"));
                (dir, repo)
            },
            |(dir, mut repo)| {
                create::run(&mut repo, &options, &Silent).expect("create");
                dir
            },
            BatchSize::PerIteration,
        )
    });

    let repo_dir = work.path().join("restore-repo");
    let mut repo = new_repo(&repo_dir);
    let tree = create::run(&mut repo, &options, &Silent).expect("create").snapshot.tree;
    repo.load_index().expect("index");
    g.bench_function("restore everything", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(work.path()).expect("target"),
            |target| {
                let opts = restore::RestoreOptions {
                    target: target.path().join("out"),
                    includes: Vec::new(),
                    excludes: Vec::new(),
                    retry_lock: std::time::Duration::ZERO,
                };
                restore::run(&repo, &tree, &opts, &Silent).expect("restore");
                target
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = end_to_end
}
criterion_main!(benches);
