//! `--backend sqlite|postgres|both`, shared by the bench binaries.

use clap::ValueEnum;
use shelf_testkit::Backend;

#[derive(Clone, Copy, ValueEnum)]
pub enum Which {
    Sqlite,
    Postgres,
    Both,
}

impl Which {
    pub fn backends(self) -> Vec<Backend> {
        match self {
            Which::Sqlite => vec![Backend::Sqlite],
            Which::Postgres => vec![Backend::Postgres],
            Which::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}
