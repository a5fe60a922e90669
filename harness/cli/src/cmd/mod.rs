//! One file per subcommand: its arguments, what it does through the library, what it prints
//! and its exit code; beside them the parts several share.

pub(crate) mod bundle;
pub(crate) mod capture;
pub(crate) mod demo;
pub(crate) mod dns;
pub(crate) mod doctor;
pub(crate) mod down;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod gc;
pub(crate) mod lab_view;
pub(crate) mod list;
pub(crate) mod matrix;
pub(crate) mod progress;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod runtime;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod trials;
pub(crate) mod up;
pub(crate) mod validate;
pub(crate) mod values;
