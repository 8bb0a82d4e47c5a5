//! Exit codes of the commands that answer questions (`run`), documented in the README:
//! 0 answered, 1 any other error, 2 bad input, 3 no usable model, 4 the program failed.

/// A scan, argument or output path that cannot be used.
pub const EXIT_BAD_INPUT: u8 = 2;
/// The model directory is missing or corrupt.
pub const EXIT_MODEL: u8 = 3;
/// The program the model wrote failed or never finished.
pub const EXIT_PROGRAM: u8 = 4;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    message: String,
}

impl Exit {
    /// An error with `code` and `message`.
    pub fn new(code: u8, message: impl std::fmt::Display) -> Exit {
        Exit {
            code,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}
