//! [`Part`]: one part of an event, read from the host the first time the
//! plugin looks at it.

use std::cell::OnceCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// One part of an event (the client, the request, the token so far, …).
///
/// It reads like the value inside it: `event.client.name` and
/// `&event.client` (as a `&Client`) work through [`Deref`]. Inside a
/// component the host copies the part into the plugin the first time it is
/// read, so a plugin pays only for what it looks at; in tests it holds the
/// value it was made with.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{AppType, Client, Part};
///
/// let client = Part::from(Client::new("acme-sync", "ACME order sync", AppType::Machine));
/// assert_eq!(client.name, "ACME order sync");
/// let plain: &Client = &client;
/// assert_eq!(plain.id, "acme-sync");
/// ```
pub struct Part<T> {
    value: OnceCell<T>,
    /// Where an unread part comes from.
    source: Option<Source<T>>,
}

/// The host's event handle, and the function that asks the host for one
/// part of it.
type Source<T> = (u32, fn(u32) -> T);

impl<T> Part<T> {
    /// A part read from the host's event `handle` by `read` when first used.
    pub(crate) fn from_host(handle: u32, read: fn(u32) -> T) -> Self {
        Part {
            value: OnceCell::new(),
            source: Some((handle, read)),
        }
    }

    /// The value, read from the host first if needed.
    fn get(&self) -> &T {
        self.value.get_or_init(|| match self.source {
            Some((handle, read)) => read(handle),
            // A part is made either with a value or with a source.
            None => unreachable!("a part without a value or a source"),
        })
    }

    /// The value, leaving the part.
    pub fn into_inner(self) -> T {
        self.get();
        match self.value.into_inner() {
            Some(value) => value,
            None => unreachable!("read just above"),
        }
    }
}

impl<T> From<T> for Part<T> {
    fn from(value: T) -> Self {
        Part {
            value: OnceCell::from(value),
            source: None,
        }
    }
}

impl<T> Deref for Part<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T> DerefMut for Part<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.get();
        match self.value.get_mut() {
            Some(value) => value,
            None => unreachable!("read just above"),
        }
    }
}

impl<T: Clone> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part::from(self.get().clone())
    }
}

impl<T: PartialEq> PartialEq for Part<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Default> Default for Part<T> {
    fn default() -> Self {
        Part::from(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Part<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static READS: Cell<u32> = const { Cell::new(0) };
    }

    fn read(handle: u32) -> String {
        READS.with(|r| r.set(r.get() + 1));
        format!("part of event {handle}")
    }

    #[test]
    fn a_host_part_is_read_once_and_only_when_used() {
        let part = Part::from_host(7, read);
        assert_eq!(READS.with(Cell::get), 0);
        assert_eq!(part.len(), "part of event 7".len());
        assert_eq!(*part, "part of event 7");
        assert_eq!(READS.with(Cell::get), 1);
        let mut copy = part.clone();
        copy.push('!');
        assert_eq!(*copy, "part of event 7!");
        assert_eq!(part.into_inner(), "part of event 7");
        assert_eq!(READS.with(Cell::get), 1);
    }
}
