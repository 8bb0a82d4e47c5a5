//! `cargo bench -p vision`: speed of the vision network, against PyTorch where it is installed.
//!
//! Prints, for the `small` and `paper` configurations at 64³ and 96³, with one and with two
//! streams (two streams exercise stream attention):
//! forward and forward+backward seconds (best of a few runs), the same for the PyTorch script
//! `scripts/vision_torch_bench.py` and the ratios; an operation-class profile of one
//! forward+backward pass; and the time and peak resident memory (VmHWM) of full-resolution
//! inference of the paper network on a 182×218×182 1 mm volume, run in a child process so the
//! peak is its own.
//!
//! Environment: `VISION_BENCH_SIZES=64` limits the sizes, `VISION_BENCH_STREAMS=1` the stream
//! counts; `VISION_BENCH_SKIP_FULLRES=1` and
//! `VISION_BENCH_SKIP_TORCH=1` skip those parts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use vision::{profile, StreamOptions, Unet, UnetConfig};

const FULLRES_SHAPE: [usize; 3] = [182, 218, 182];
const CHILD_ENV: &str = "VISION_BENCH_CHILD";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Best wall time of `reps` runs after one warm-up.
fn best_of(reps: usize, mut run: impl FnMut()) -> f64 {
    run();
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn phi(streams: usize, device: &Device) -> Tensor<2> {
    Tensor::random([streams, 32], Distribution::Normal(0.0, 1.0), device)
}

fn forward_seconds(config: &UnetConfig, size: usize, streams: usize, reps: usize) -> f64 {
    let device = Device::flex();
    let net = Unet::new(config, 1, &device).expect("preset builds");
    let x = Tensor::<5>::random(
        [streams, 1, size, size, size],
        Distribution::Default,
        &device,
    );
    let phi = phi(streams, &device);
    best_of(reps, || {
        let out = net.forward(x.clone(), [1.0; 3], &phi).expect("forward");
        let _ = out.probabilities.sum().into_scalar::<f32>();
    })
}

fn forward_backward_once(net: &Unet, x: &Tensor<5>, phi: &Tensor<2>) {
    let out = net.forward(x.clone(), [1.0; 3], phi).expect("forward");
    let loss = out.probabilities.mean() + out.embedding.powf_scalar(2.0).mean().mul_scalar(1e-3);
    let grads = loss.backward();
    let weight = net.encoder.blocks[0].convs[0].weight.val();
    let _ = weight.grad(&grads).map(|g| g.sum().into_scalar::<f32>());
}

fn forward_backward_seconds(config: &UnetConfig, size: usize, streams: usize, reps: usize) -> f64 {
    let device = Device::flex().autodiff();
    let net = Unet::new(config, 1, &device).expect("preset builds");
    let x = Tensor::<5>::random(
        [streams, 1, size, size, size],
        Distribution::Default,
        &device,
    );
    let phi = phi(streams, &device);
    best_of(reps, || forward_backward_once(&net, &x, &phi))
}

fn print_profile(config: &UnetConfig, size: usize) {
    let device = Device::flex().autodiff();
    let net = Unet::new(config, 1, &device).expect("preset builds");
    let x = Tensor::<5>::random([1, 1, size, size, size], Distribution::Default, &device);
    let phi = phi(1, &device);
    forward_backward_once(&net, &x, &phi);
    profile::enable(true);
    let start = Instant::now();
    forward_backward_once(&net, &x, &phi);
    let total = start.elapsed().as_secs_f64();
    profile::enable(false);
    let classes = profile::take();
    println!(
        "\nprofile: {} at {size}³, one forward+backward = {total:.3} s",
        config.name
    );
    let mut accounted = 0.0;
    for (class, seconds, calls) in &classes {
        accounted += seconds;
        println!(
            "  {class:22} {seconds:8.3} s  {:5.1} %  ({calls} calls)",
            100.0 * seconds / total
        );
    }
    println!(
        "  {:22} {:8.3} s  {:5.1} %  (autodiff backward of everything but the convolutions, glue)",
        "rest",
        total - accounted,
        100.0 * (total - accounted) / total
    );
}

struct TorchRow {
    forward_s: f64,
    forward_backward_s: f64,
}

fn torch_available() -> bool {
    Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn json_number(line: &str, key: &str) -> Option<f64> {
    let start = line.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &line[start..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

fn torch_rows(name: &str, sizes: &[usize], streams: usize, reps: usize) -> Vec<Option<TorchRow>> {
    let root = workspace_root();
    let mut args = vec![
        root.join("scripts/vision_torch_bench.py")
            .display()
            .to_string(),
        "--config".into(),
        root.join(format!("configs/vision/{name}.toml"))
            .display()
            .to_string(),
        "--reps".into(),
        reps.to_string(),
        "--streams".into(),
        streams.to_string(),
        "--size".into(),
    ];
    args.extend(sizes.iter().map(|s| s.to_string()));
    let output = match Command::new("python3").args(&args).output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!(
                "PyTorch script failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            return sizes.iter().map(|_| None).collect();
        }
        Err(error) => {
            eprintln!("cannot run python3: {error}");
            return sizes.iter().map(|_| None).collect();
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    sizes
        .iter()
        .map(|size| {
            let line = text
                .lines()
                .find(|l| json_number(l, "size") == Some(*size as f64))?;
            Some(TorchRow {
                forward_s: json_number(line, "forward_s")?,
                forward_backward_s: json_number(line, "forward_backward_s")?,
            })
        })
        .collect()
}

fn peak_rss_gib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / (1024.0 * 1024.0))
}

/// The child process: full-resolution streamed inference of the paper net, one JSON line.
fn fullres_child() {
    let device = Device::flex();
    let config = UnetConfig::preset("paper").expect("paper preset");
    let net = Unet::new(&config, 1, &device).expect("paper net builds");
    let [sx, sy, sz] = FULLRES_SHAPE;
    let x = Tensor::<5>::random([1, 1, sx, sy, sz], Distribution::Default, &device);
    let phi = phi(1, &device);
    let before = peak_rss_gib();
    let start = Instant::now();
    let out = net
        .forward_streamed(x, [1.0; 3], &phi, &StreamOptions::default())
        .expect("streamed inference");
    let _ = out.probabilities.sum().into_scalar::<f32>();
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\": {seconds}, \"peak_rss_gib\": {}, \"rss_before_gib\": {before}}}",
        peak_rss_gib()
    );
}

fn main() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("fullres") {
        fullres_child();
        return;
    }
    let sizes: Vec<usize> = std::env::var("VISION_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 96]);
    let stream_counts: Vec<usize> = std::env::var("VISION_BENCH_STREAMS")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let with_torch = std::env::var("VISION_BENCH_SKIP_TORCH").is_err() && torch_available();
    if !with_torch {
        println!("PyTorch not importable (or skipped): no reference ratios.");
    }

    println!(
        "{:8} {:>5} {:>3} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "config", "size", "S", "fwd s", "fwd+bwd s", "torch fwd", "torch f+b", "fwd ×", "f+b ×"
    );
    for (name, &streams) in ["small", "paper"]
        .into_iter()
        .flat_map(|n| stream_counts.iter().map(move |s| (n, s)))
    {
        let config = UnetConfig::preset(name).expect("preset");
        let reps = if name == "paper" { 1 } else { 2 };
        let torch = if with_torch {
            torch_rows(name, &sizes, streams, reps)
        } else {
            sizes.iter().map(|_| None).collect()
        };
        for (size, torch) in sizes.iter().zip(torch) {
            let forward = forward_seconds(&config, *size, streams, reps);
            let forward_backward = forward_backward_seconds(&config, *size, streams, reps);
            let (tf, tfb, rf, rfb) = match torch {
                Some(t) => (
                    format!("{:.3}", t.forward_s),
                    format!("{:.3}", t.forward_backward_s),
                    format!("{:.2}", forward / t.forward_s),
                    format!("{:.2}", forward_backward / t.forward_backward_s),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            println!(
                "{name:8} {size:>4}³ {streams:>3} {forward:>10.3} {forward_backward:>10.3} {tf:>10} {tfb:>10} {rf:>8} {rfb:>8}"
            );
        }
    }
    println!("(× = burn time / PyTorch time; below 1 means faster than PyTorch)");

    for name in ["small", "paper"] {
        let config = UnetConfig::preset(name).expect("preset");
        print_profile(&config, sizes[0]);
    }

    if std::env::var("VISION_BENCH_SKIP_FULLRES").is_err() {
        let exe = std::env::current_exe().expect("bench executable path");
        let output = Command::new(exe).env(CHILD_ENV, "fullres").output();
        match output {
            Ok(output) if output.status.success() => {
                let text = String::from_utf8_lossy(&output.stdout);
                let line = text.lines().last().unwrap_or_default();
                let seconds = json_number(line, "seconds").unwrap_or(f64::NAN);
                let peak = json_number(line, "peak_rss_gib").unwrap_or(f64::NAN);
                println!(
                    "\nfull resolution, paper net, {}×{}×{} at 1 mm, streamed: {seconds:.1} s, peak RSS {peak:.2} GiB",
                    FULLRES_SHAPE[0], FULLRES_SHAPE[1], FULLRES_SHAPE[2]
                );
            }
            Ok(output) => eprintln!(
                "full-resolution child failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => eprintln!("cannot start the full-resolution child: {error}"),
        }
    }
}
