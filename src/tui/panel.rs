//! Loading state of one block of data on screen: the last good snapshot, whether a refresh is
//! running, and the error of the last refresh, so a failure shows where the data would be
//! while the previous figures stay visible.

use chrono::{DateTime, Utc};

use crate::core::CoreError;

/// Data loaded by a background job, with its loading state.
#[derive(Debug)]
pub struct Panel<T> {
    data: Option<T>,
    loading: bool,
    error: Option<String>,
    updated_at: Option<DateTime<Utc>>,
}

impl<T> Default for Panel<T> {
    fn default() -> Self {
        Self {
            data: None,
            loading: false,
            error: None,
            updated_at: None,
        }
    }
}

impl<T> Panel<T> {
    /// Marks a refresh as requested.
    pub fn start(&mut self) {
        self.loading = true;
    }

    /// Takes the result of a refresh: new data replaces the old, an error keeps it.
    pub fn finish(&mut self, result: Result<T, CoreError>) {
        self.loading = false;
        match result {
            Ok(data) => {
                self.data = Some(data);
                self.error = None;
                self.updated_at = Some(Utc::now());
            }
            Err(error) => self.error = Some(error.to_string()),
        }
    }

    /// Changes the loaded data in place after a successful incremental load (a poll).
    pub fn update(&mut self, change: impl FnOnce(&mut T)) {
        self.loading = false;
        self.error = None;
        self.updated_at = Some(Utc::now());
        if let Some(data) = self.data.as_mut() {
            change(data);
        }
    }

    pub fn data(&self) -> Option<&T> {
        self.data.as_ref()
    }

    pub fn is_loading(&self) -> bool {
        self.loading
    }

    /// Returns the error of the last refresh, unsanitized.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }
}
