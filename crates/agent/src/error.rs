//! The error type of the `agent` crate.

use std::path::PathBuf;

/// Everything that can go wrong in `agent`. File errors carry the path so a user knows which
/// input to fix; sequence errors say which limit was hit.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The operating system refused to read or write a file.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A configuration file (TOML or JSON) could not be parsed or holds inconsistent values.
    #[error("{origin}: invalid agent config: {problem}")]
    Config {
        /// Where the config came from (a path, or a description such as "builtin tiny").
        origin: String,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// The HF tokenizer failed to train, load, save, encode or decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A checkpoint is incomplete or does not match the model it is loaded into.
    #[error("{path}: checkpoint: {problem}")]
    Checkpoint {
        /// The checkpoint file or directory concerned.
        path: PathBuf,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// The tokenizer has more tokens than the decoder's embedding table.
    #[error(
        "tokenizer has {tokenizer} tokens but the decoder config allows {decoder}; \
         train the tokenizer with a smaller vocabulary or raise `vocab_size` in the config"
    )]
    VocabMismatch {
        /// Vocabulary size of the tokenizer.
        tokenizer: usize,
        /// `vocab_size` of the decoder config.
        decoder: usize,
    },
    /// A sequence would exceed the decoder's maximum length.
    #[error("sequence of {len} tokens exceeds the decoder's max_seq_len of {max}")]
    SequenceTooLong {
        /// Length the sequence would have.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The number of externally supplied `<vol>` embeddings (ε°) does not match the slots.
    #[error("the sequence has {slots} <vol> slots but {supplied} embeddings were supplied")]
    VolEmbeddingCount {
        /// `<vol>` slots in the tokens being processed.
        slots: usize,
        /// Rows of the supplied ε° tensor.
        supplied: usize,
    },
    /// A tensor argument has the wrong shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An argument is out of its documented range or violates the sequence grammar.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for `agent`.
pub type Result<T> = std::result::Result<T, AgentError>;

impl AgentError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn tokenizer(err: impl std::fmt::Display) -> Self {
        AgentError::Tokenizer(err.to_string())
    }

    pub(crate) fn checkpoint(path: &std::path::Path, problem: impl Into<String>) -> Self {
        AgentError::Checkpoint {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}
