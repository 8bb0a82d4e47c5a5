//! `voxelprompt`: the command line of VoxelPrompt.

mod allocator;
mod cmd;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Grounded analysis of 3-D medical images.
#[derive(Parser)]
#[command(name = "voxelprompt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads for the compute kernels, and samples `eval` answers side by side
    /// (default: every core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// No progress or informational lines on stderr (results and errors still print).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Machine-readable output: stdout holds JSON only (one document; `chat`: one object per
    /// line read), lines for people go to stderr.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Show a scan's format, shape, spacing, orientation, affine, datatype and intensity range.
    Info(cmd::info::InfoArgs),
    /// Run a hand-written program in the sandbox (vision calls answered from --labels).
    Exec(cmd::exec::ExecArgs),
    /// Synthesize training subjects: contrasts, label maps, lesions, follow-up visits.
    Synth(cmd::synth::SynthArgs),
    /// Draw axial, coronal and sagittal slices (optionally with labels) to a PNG.
    Render(cmd::render::RenderArgs),
    /// Write the built-in demo head (T1-like image, label map, colour table) to a directory.
    Example(cmd::example::ExampleArgs),
    /// Per-label volume (mL), extents (mm), centroid (mm) and image statistics of a label map.
    Measure(cmd::measure::MeasureArgs),
    /// The task catalogue: list the families, or write a corpus for tokenizer training.
    Tasks(cmd::tasks::TasksArgs),
    /// Single-task baseline UNet: train on synthesised subjects, segment real scans.
    Baseline(cmd::baseline::BaselineArgs),
    /// Ask the trained model a question about one or more scans.
    Run(cmd::run::RunArgs),
    /// Ask one question of many subjects/sessions (CSV manifest or BIDS); resumable, shardable.
    Batch(cmd::batch::BatchArgs),
    /// Evaluate a trained model on held-out synthetic task samples (report.md, report.json).
    Eval(cmd::eval::EvalArgs),
    /// Joint training of the agent and the vision network on synthesised task samples.
    Train(cmd::train::TrainArgs),
    /// Average the weights of several checkpoints of one training run into a new model.
    Average(cmd::average::AverageArgs),
    /// Put a training run's checkpoint and its held-out evaluation in models/ (f16 weights).
    Ship(cmd::ship::ShipArgs),
    /// Questions about the same scans, one after another, in one persistent environment.
    Chat(cmd::chat::ChatArgs),
    /// The shipped model on built-in cases: synthetic subjects with the truth, a real brain MRI.
    Demo(cmd::demo::DemoArgs),
    /// A local web app and HTTP API: upload scans, ask, watch the steps, see the masks.
    Serve(cmd::serve::ServeArgs),
}

impl Command {
    /// Whether the command has a `--json` form.
    fn has_json(&self) -> bool {
        match self {
            Command::Train(_) | Command::Ship(_) | Command::Average(_) | Command::Serve(_) => false,
            Command::Tasks(args) => args.has_json(),
            Command::Baseline(args) => args.has_json(),
            _ => true,
        }
    }
}

/// The (sub)command names as typed, e.g. `tasks corpus`.
fn command_name(matches: &ArgMatches) -> String {
    let mut names = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        names.push(name);
        m = sub;
    }
    names.join(" ")
}

fn main() -> ExitCode {
    // Before any thread exists (clap, rayon): see the module for why and what it measured.
    allocator::keep_freed_memory(|name| std::env::var(name).ok());
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.json && !cli.command.has_json() {
        eprintln!(
            "error: --json: `{}` has no JSON output (the README's command table lists those \
             that do)",
            command_name(&matches)
        );
        return ExitCode::from(2);
    }
    cmd::set_quiet(cli.quiet);
    cmd::set_json(cli.json);
    if let Some(n) = cli.threads {
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
        if let Err(e) = built {
            eprintln!("error: cannot use {n} threads: {e}");
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Info(args) => cmd::info::run(&args),
        Command::Example(args) => cmd::example::run(&args),
        Command::Render(args) => cmd::render::run(&args),
        Command::Exec(args) => cmd::exec::run(&args),
        Command::Synth(args) => cmd::synth::run(&args),
        Command::Measure(args) => cmd::measure::run(&args),
        Command::Tasks(args) => cmd::tasks::run(&args),
        Command::Baseline(args) => cmd::baseline::run(&args),
        Command::Train(args) => cmd::train::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Eval(args) => cmd::eval::run(&args),
        Command::Demo(args) => cmd::demo::run(&args),
        Command::Chat(args) => cmd::chat::run(&args),
        Command::Ship(args) => cmd::ship::run(&args),
        Command::Average(args) => cmd::average::run(&args),
        Command::Batch(args) => cmd::batch::run(&args),
        Command::Serve(args) => cmd::serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<cmd::exit::Exit>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
