//! `voxelprompt chat [--model DIR] [--out DIR] SCAN…`: questions about the same scans, one
//! after another, in one persistent environment. The model loads once; every answer's
//! variables stay reachable as `NAME_TURN` (`m_1`, `e_2`), for later programs and for code the
//! user types with `:code` ("how much bigger is it than the left?" is
//! `:code respond(volume(m_2) - volume(m_1))`).
//!
//! The agent writes each program from the question and the scans' metadata alone: it was
//! trained on single questions and does not see earlier ones, so a follow-up must say what it
//! refers to ("the right hippocampus", not "now the right one").
//!
//! Commands: `:steps` (the last program, step by step, with feedback), `:vars`, `:code CODE`,
//! `:save DIR` (every answer so far as `run --out` writes it), `:help`, `:quit`. With
//! `--out DIR`, each answer is written there as it comes (`DIR/01/`, `DIR/02/`, …).

use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;
use train::inference::{Answer, AnswerOptions, Conversation, Scan};

use crate::cmd::exit::{Exit, EXIT_BAD_INPUT};
use crate::cmd::run::{load_model, read_scans, write_answer, LoadedModel, ScanArg};

/// Arguments of `chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    /// Scans: `PATH`, `NAME=PATH` or `NAME@YYYY-MM-DD=PATH` (default names scan_1, scan_2, …).
    #[arg(required = true)]
    scans: Vec<String>,
    /// Model directory (default: $VOXELPROMPT_MODEL, else the shipped models/voxelprompt-small).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write each answer (report.json, trace.json, volumes, pictures) to DIR/01, DIR/02, ….
    #[arg(long)]
    out: Option<PathBuf>,
    /// Modality of every scan given without one in its name (e.g. `T1w`, `FLAIR`, `CT`).
    #[arg(long)]
    modality: Option<String>,
    /// Most program steps per answer.
    #[arg(long, default_value_t = 8)]
    max_steps: usize,
    /// Compute device: `cpu`, or `wgpu` / `cuda` in a build with that feature.
    #[arg(long, default_value = "cpu")]
    device: String,
}

const HELP: &str = "\
Ask a question about the scans, or:
  :steps       the last program, step by step, with its feedback
  :vars        the variables defined so far (NAME_TURN keeps each answer's)
  :code CODE   run code in the environment, e.g. :code respond(volume(m_2) - volume(m_1))
  :save DIR    write every answer so far (report.json, volumes, pictures) under DIR
  :help        this text
  :quit        leave (also Ctrl-D)";

/// One answered question, kept for `:steps` and `:save`.
struct Turn {
    prompt: String,
    answer: Answer,
    seconds: f64,
}

pub fn run(args: &ChatArgs) -> Result<()> {
    let loaded = load_model(args.model.as_deref(), &args.device)?;
    let (scans, parsed) = read_scans(&args.scans, args.modality.as_deref())?;
    let options = AnswerOptions {
        max_steps: args.max_steps,
        ..AnswerOptions::default()
    };
    let mut conversation =
        Conversation::new(&loaded.model, &scans, options).context("starting the conversation")?;
    let interactive = std::io::stdin().is_terminal();
    let mut editor = rustyline::DefaultEditor::new().context("starting the line editor")?;
    let history = history_path();
    if interactive {
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        crate::cmd::note!(
            "model {} loaded in {:.1} s; scans: {}. :help for commands.",
            loaded.manifest.model,
            loaded.load_seconds,
            scans
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut turns: Vec<Turn> = Vec::new();
    loop {
        let line = match editor.readline(if interactive { "> " } else { "" }) {
            Ok(line) => line,
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => break,
            Err(e) => return Err(e).context("reading a line"),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if interactive {
            let _ = editor.add_history_entry(line);
        }
        let (command, rest) = match line.strip_prefix(':') {
            Some(c) => c
                .split_once(char::is_whitespace)
                .map(|(a, b)| (Some(a), b.trim()))
                .unwrap_or((Some(c), "")),
            None => (None, line),
        };
        match command {
            None => {
                let started = Instant::now();
                let answer = match conversation.ask(rest) {
                    Ok(a) => a,
                    Err(e) => {
                        println!("error: {e}");
                        continue;
                    }
                };
                let turn = conversation.turns();
                print_answer(&answer, turn);
                let t = Turn {
                    prompt: rest.to_string(),
                    answer,
                    seconds: started.elapsed().as_secs_f64(),
                };
                if let Some(out) = &args.out {
                    save_turn(&loaded, &scans, &parsed, &t, &out.join(turn_folder(turn)))?;
                }
                turns.push(t);
            }
            Some("q" | "quit" | "exit") => break,
            Some("help" | "h") => println!("{HELP}"),
            Some("steps") => match turns.last() {
                None => println!("no question asked yet"),
                Some(t) => print_steps(&t.answer),
            },
            Some("vars") => {
                let mut vars = conversation.variables();
                vars.sort();
                for (name, kind) in vars {
                    println!("{name}: {}", friendly_type(&kind));
                }
            }
            Some("code") if !rest.is_empty() => match conversation.run_code(rest) {
                Ok((outcome, output)) => {
                    let feedback = outcome.feedback_text();
                    if !feedback.is_empty() {
                        println!("{feedback}");
                    }
                    if !output.response.is_empty() {
                        println!("{}", output.response);
                    }
                }
                Err(e) => println!("error: {e}"),
            },
            Some("save") if !rest.is_empty() => {
                let dir = PathBuf::from(rest);
                for (k, t) in turns.iter().enumerate() {
                    save_turn(&loaded, &scans, &parsed, t, &dir.join(turn_folder(k + 1)))?;
                }
                println!("saved {} answers under {}", turns.len(), dir.display());
            }
            Some(other) => println!("unknown or incomplete command :{other} (:help lists them)"),
        }
    }
    if interactive {
        if let Some(h) = &history {
            if let Some(parent) = h.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = editor.save_history(h);
        }
    }
    Ok(())
}

/// A program value's type in the words of docs/runtime-library.md.
fn friendly_type(rust_type: &str) -> &str {
    match rust_type.rsplit("::").next().unwrap_or(rust_type) {
        "VolumeHandle" => "volume",
        "MaskHandle" => "mask",
        "EncodingHandle" => "encoding",
        "i64" => "integer",
        "f64" => "number",
        "bool" => "true/false",
        "ImmutableString" | "String" | "string" => "text",
        "Array" => "list",
        "Map" => "record",
        other => other,
    }
}

fn turn_folder(turn: usize) -> String {
    format!("{turn:02}")
}

/// `~/.cache/voxelprompt/chat_history`.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/voxelprompt/chat_history"))
}

fn print_answer(answer: &Answer, turn: usize) {
    let out = &answer.output;
    if out.response.trim().is_empty() {
        println!("(no answer)");
    } else {
        println!("{}", out.response);
    }
    if let Some(e) = &out.error {
        println!("[the program failed: {e}; :steps shows it]");
    }
    for o in &out.outputs {
        println!("[shown: {}]", o.name);
    }
    println!(
        "[{:.1} s; this answer's variables are now NAME_{turn}]",
        answer.seconds
    );
}

fn print_steps(answer: &Answer) {
    for (k, s) in answer.steps.iter().enumerate() {
        println!("-- step {} --\n{}", k + 1, s.code);
        if !s.feedback.is_empty() {
            println!("=> {}", s.feedback);
        }
        if let Some(e) = s
            .error
            .as_ref()
            .filter(|e| !s.feedback.contains(e.as_str()))
        {
            println!("!! {e}");
        }
    }
}

fn save_turn(
    loaded: &LoadedModel,
    scans: &[Scan],
    parsed: &[ScanArg],
    turn: &Turn,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Exit::new(
            EXIT_BAD_INPUT,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    write_answer(
        loaded,
        scans,
        parsed,
        &turn.prompt,
        turn.answer.clone(),
        Some(dir),
        0.0,
        turn.seconds,
    )?;
    Ok(())
}
