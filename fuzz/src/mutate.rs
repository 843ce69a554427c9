//! A small mutation fuzzer for stable Rust, used where cargo-fuzz and its
//! libFuzzer are not available: it mutates a corpus (seeds, then every
//! input whose outcome was new) with byte flips, insertions, deletions,
//! splices and dictionary tokens, runs the target on each, and on a panic
//! writes the input to `artifacts/<target>/crash-<hash>` and exits 1. The
//! input being run is also kept in `artifacts/<target>/current`, so that
//! an abort (a stack overflow) leaves it behind.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small xorshift generator (no dependency, reproducible from a seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Options of a run, from the command line:
/// `TARGET [--seconds N] [--seed N] [CORPUS_DIR...]`.
#[derive(Debug)]
pub struct Options {
    /// How long to run.
    pub duration: Duration,
    /// The random seed.
    pub seed: u64,
    /// Corpus directories to read seeds from (the first also receives new
    /// inputs).
    pub corpus: Vec<PathBuf>,
    /// Where crashes go.
    pub artifacts: PathBuf,
    /// Replay the given files once instead of fuzzing.
    pub replay: Vec<PathBuf>,
}

impl Options {
    /// Parses `std::env::args` for target `name`.
    pub fn from_args(name: &str) -> Options {
        let mut options = Options {
            duration: Duration::from_secs(60),
            seed: 0x5eed,
            corpus: Vec::new(),
            artifacts: PathBuf::from("artifacts").join(name),
            replay: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--seconds" => {
                    let n = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
                    options.duration = Duration::from_secs(n);
                }
                "--seed" => options.seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1),
                "--replay" => options.replay.extend(args.next().map(PathBuf::from)),
                other => options.corpus.push(PathBuf::from(other)),
            }
        }
        options
    }
}

fn hash_of(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

fn read_corpus(dirs: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if let Ok(data) = std::fs::read(&path) {
                inputs.push(data);
            }
        }
    }
    inputs
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => out.insert(at, rng.next() as u8),
            3 if !out.is_empty() => {
                let len = 1 + rng.below(8.min(out.len()));
                let start = rng.below(out.len() - len + 1);
                out.drain(start..start + len);
            }
            4 | 5 => {
                let token = dictionary[rng.below(dictionary.len())];
                out.splice(at..at, token.iter().copied());
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                out.splice(at..at, other[from..to].iter().copied());
            }
            7 if !out.is_empty() => {
                // Repeat a chunk (nesting, long strings).
                let len = 1 + rng.below(4.min(out.len()));
                let start = rng.below(out.len() - len + 1);
                let chunk: Vec<u8> = out[start..start + len].to_vec();
                let times = 1 + rng.below(64);
                for _ in 0..times {
                    out.splice(start..start, chunk.iter().copied());
                }
            }
            _ => {
                let len = rng.below(out.len() + 1);
                out.truncate(len);
            }
        }
    }
    out.truncate(1 << 20);
    out
}

fn save(dir: &Path, prefix: &str, data: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{prefix}{:016x}", hash_of(data)));
    let _ = std::fs::write(&path, data);
    path
}

/// Runs `target` under `options`. `signature` names an input's outcome
/// class (inputs with a new one join the corpus). Returns the process exit
/// code: 0, or 1 after a crash.
pub fn fuzz(
    name: &str,
    options: &Options,
    seeds: &[&[u8]],
    dictionary: &[&[u8]],
    target: fn(&[u8]),
    signature: fn(&[u8]) -> u64,
) -> i32 {
    std::panic::set_hook(Box::new(|_| {}));
    if !options.replay.is_empty() {
        for path in &options.replay {
            let data = std::fs::read(path).unwrap_or_default();
            let _ = std::panic::take_hook();
            target(&data);
            println!("{}: ok", path.display());
        }
        return 0;
    }
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
    corpus.extend(read_corpus(&options.corpus));
    let mut seen: HashSet<u64> = corpus.iter().map(|c| signature(c)).collect();
    let mut rng = Rng(options.seed | 1);
    let _ = std::fs::create_dir_all(&options.artifacts);
    let current = options.artifacts.join("current");
    let started = Instant::now();
    let mut execs: u64 = 0;
    let mut last_report = Instant::now();
    while started.elapsed() < options.duration {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus, dictionary);
        if let Ok(mut file) = std::fs::File::create(&current) {
            let _ = file.write_all(&input);
        }
        execs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let path = save(&options.artifacts, "crash-", &input);
            let _ = std::panic::take_hook();
            eprintln!(
                "{name}: CRASH after {execs} execs; input saved to {}",
                path.display()
            );
            // Show the panic message.
            let _ = catch_unwind(AssertUnwindSafe(|| target(&input)));
            return 1;
        }
        let class = signature(&input);
        if seen.insert(class) {
            if let Some(dir) = options.corpus.first() {
                save(dir, "", &input);
            }
            corpus.push(input);
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "{name}: {execs} execs, {:.0}/s, corpus {}",
                execs as f64 / started.elapsed().as_secs_f64(),
                corpus.len()
            );
        }
    }
    let _ = std::fs::remove_file(&current);
    println!(
        "{name}: done: {execs} execs in {:.0} s ({:.0}/s), corpus {}, no crash",
        started.elapsed().as_secs_f64(),
        execs as f64 / started.elapsed().as_secs_f64(),
        corpus.len()
    );
    0
}
