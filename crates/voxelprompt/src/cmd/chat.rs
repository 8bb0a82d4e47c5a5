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
//!
//! With `--json`, every line read gets one JSON object on a line of stdout (JSON Lines; its
//! `kind` is `answer`, `code`, `steps`, `variables`, `saved`, `help` or `error`), so a script
//! can drive the chat through stdin: write a line, read a line.

use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use train::inference::{Answer, Conversation, Ending, StepRecord};

use crate::cmd::args::{ModelArgs, ScanArgs};
use crate::cmd::exit::{Exit, EXIT_BAD_INPUT};
use crate::cmd::run::{
    measurements, write_answer, Inputs, LoadedModel, Measurement, OutputOptions,
};

/// Arguments of `chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    scans: ScanArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Write each answer (report.json, trace.json, volumes, pictures) to DIR/01, DIR/02, ….
    #[arg(long)]
    out: Option<PathBuf>,
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
    /// The conversation's turn number (`NAME_TURN`).
    number: usize,
    prompt: String,
    answer: Answer,
}

/// The reply to one line of input: printed for a person, or under `--json` as one JSON object
/// on a line of its own (its `kind` says which), so a script can write a line and read a line.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Reply<'a> {
    /// A question the model answered; its variables are now `NAME_TURN`.
    Answer {
        turn: usize,
        prompt: &'a str,
        answer: &'a str,
        ending: Ending,
        /// The error that ended the program, if any.
        error: Option<String>,
        /// Names of the volumes the program showed.
        shown: Vec<&'a str>,
        /// The numbers of the answer with their units (as in report.json).
        measurements: Vec<Measurement>,
        /// Files written under `--out` (report.json last).
        files: Vec<String>,
        seconds: f64,
    },
    /// Hand-written code (`:code`) run as a turn of its own.
    Code {
        turn: usize,
        code: &'a str,
        /// What its `read` calls returned (and its error, as the agent would see it).
        feedback: String,
        /// What its `respond` calls said.
        answer: &'a str,
        error: Option<String>,
        shown: Vec<&'a str>,
        /// Files written under `--out` (its report and shown volumes), like an answer's.
        files: Vec<String>,
    },
    /// `:steps`: the last answer's program.
    Steps {
        turn: usize,
        steps: &'a [StepRecord],
    },
    /// `:vars`: each variable with its type.
    Variables { variables: BTreeMap<String, String> },
    /// `:save`: the answers written and their files.
    Saved {
        dir: String,
        answers: usize,
        files: Vec<String>,
    },
    /// `:help`.
    Help { text: &'static str },
    /// A line that could not be answered (the chat goes on).
    Error { error: String },
}

impl Reply<'_> {
    fn print(&self) -> Result<()> {
        if crate::cmd::json() {
            println!("{}", serde_json::to_string(self)?);
            return Ok(());
        }
        match self {
            Reply::Answer {
                turn,
                answer,
                error,
                shown,
                seconds,
                ..
            } => {
                if answer.trim().is_empty() {
                    println!("(no answer)");
                } else {
                    println!("{answer}");
                }
                if let Some(e) = error {
                    println!("[the program failed: {e}; :steps shows it]");
                }
                for name in shown {
                    println!("[shown: {name}]");
                }
                println!("[{seconds:.1} s; this answer's variables are now NAME_{turn}]");
            }
            Reply::Code {
                feedback, answer, ..
            } => {
                if !feedback.is_empty() {
                    println!("{feedback}");
                }
                if !answer.is_empty() {
                    println!("{answer}");
                }
            }
            Reply::Steps { steps, .. } => print_steps(steps),
            Reply::Variables { variables } => {
                for (name, kind) in variables {
                    println!("{name}: {kind}");
                }
            }
            Reply::Saved { dir, answers, .. } => println!("saved {answers} answers under {dir}"),
            Reply::Help { text } => println!("{text}"),
            Reply::Error { error } => println!("error: {error}"),
        }
        Ok(())
    }
}

pub fn run(args: &ChatArgs) -> Result<()> {
    let loaded = args.model.load()?;
    let (scans, parsed) = args.scans.read()?;
    let inputs = Inputs {
        scans: &scans,
        args: &parsed,
        read_seconds: 0.0,
    };
    let mut conversation = Conversation::new(&loaded.model, &scans, args.model.answer_options())
        .context("starting the conversation")?;
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
    // Under --json stdout carries the replies alone, so no prompt is printed.
    let prompt = if interactive && !crate::cmd::json() {
        "> "
    } else {
        ""
    };
    let mut turns: Vec<Turn> = Vec::new();
    loop {
        let line = match editor.readline(prompt) {
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
                let answer = match conversation.ask(rest) {
                    Ok(a) => a,
                    Err(e) => {
                        Reply::Error {
                            error: e.to_string(),
                        }
                        .print()?;
                        continue;
                    }
                };
                let turn = conversation.turns();
                let t = Turn {
                    number: turn,
                    prompt: rest.to_string(),
                    answer,
                };
                let files = match &args.out {
                    Some(out) => save_turn(&loaded, inputs, &t, &out.join(turn_folder(turn)))?,
                    None => Vec::new(),
                };
                let output = &t.answer.output;
                Reply::Answer {
                    turn,
                    prompt: &t.prompt,
                    answer: &output.response,
                    ending: t.answer.ending,
                    error: output.error.as_ref().map(|e| e.to_string()),
                    shown: output.outputs.iter().map(|o| o.name.as_str()).collect(),
                    measurements: measurements(&t.answer),
                    files,
                    seconds: t.answer.seconds,
                }
                .print()?;
                turns.push(t);
            }
            Some("q" | "quit" | "exit") => break,
            Some("help" | "h") => Reply::Help { text: HELP }.print()?,
            Some("steps") => match turns.last() {
                None => Reply::Error {
                    error: "no question asked yet".into(),
                }
                .print()?,
                Some(t) => Reply::Steps {
                    turn: t.number,
                    steps: &t.answer.steps,
                }
                .print()?,
            },
            Some("vars") => Reply::Variables {
                variables: conversation
                    .variables()
                    .into_iter()
                    .map(|(name, kind)| (name, friendly_type(&kind).to_string()))
                    .collect(),
            }
            .print()?,
            Some("code") if !rest.is_empty() => match conversation.run_code_answer(rest, &[]) {
                Ok(answer) => {
                    // A turn like a question's: saved under --out and by :save.
                    let t = Turn {
                        number: conversation.turns(),
                        prompt: format!(":code {rest}"),
                        answer,
                    };
                    let files = match &args.out {
                        Some(out) => {
                            save_turn(&loaded, inputs, &t, &out.join(turn_folder(t.number)))?
                        }
                        None => Vec::new(),
                    };
                    let step = t.answer.steps.first();
                    let output = &t.answer.output;
                    Reply::Code {
                        turn: t.number,
                        code: rest,
                        feedback: step.map(|s| s.feedback.clone()).unwrap_or_default(),
                        answer: &output.response,
                        error: step.and_then(|s| s.error.clone()),
                        shown: output.outputs.iter().map(|o| o.name.as_str()).collect(),
                        files,
                    }
                    .print()?;
                    turns.push(t);
                }
                Err(e) => Reply::Error {
                    error: e.to_string(),
                }
                .print()?,
            },
            Some("save") if !rest.is_empty() => {
                let dir = PathBuf::from(rest);
                let mut files = Vec::new();
                for (k, t) in turns.iter().enumerate() {
                    files.extend(save_turn(
                        &loaded,
                        inputs,
                        t,
                        &dir.join(turn_folder(k + 1)),
                    )?);
                }
                Reply::Saved {
                    dir: dir.display().to_string(),
                    answers: turns.len(),
                    files,
                }
                .print()?;
            }
            Some(other) => Reply::Error {
                error: format!("unknown or incomplete command :{other} (:help lists them)"),
            }
            .print()?,
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

fn print_steps(steps: &[StepRecord]) {
    for (k, s) in steps.iter().enumerate() {
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

/// Writes one answer under `dir` as `run --out` does; returns the files written, report.json
/// last.
fn save_turn(loaded: &LoadedModel, inputs: Inputs, turn: &Turn, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Exit::new(
            EXIT_BAD_INPUT,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let answered = write_answer(
        loaded,
        inputs,
        &turn.prompt,
        turn.answer.clone(),
        turn.answer.seconds,
        &OutputOptions {
            dir: Some(dir),
            dicom_seg: false,
        },
    )?;
    let mut files = answered.outputs;
    files.extend(answered.evidence.into_iter().filter_map(|e| e.file));
    files.push(dir.join("report.json").display().to_string());
    Ok(files)
}
