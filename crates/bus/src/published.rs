//! One published event as every subscriber of its chat on this node shares it.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// An event and, once the first subscriber asked for it, its rendering as bytes: one
/// allocation and one serialisation per event and node, however many subscribers deliver
/// it. Cloning is a reference count.
///
/// The bus does not know the rendering's format; its consumers must agree on one (the
/// server's SSE frame), since the first rendering is the one every subscriber gets.
#[derive(Debug)]
pub struct Published<T>(Arc<Inner<T>>);

#[derive(Debug)]
struct Inner<T> {
    event: T,
    rendered: OnceLock<Bytes>,
}

impl<T> Published<T> {
    pub fn new(event: T) -> Self {
        Self(Arc::new(Inner { event, rendered: OnceLock::new() }))
    }

    pub fn event(&self) -> &T {
        &self.0.event
    }

    /// The event rendered by `render`, which runs for the first caller only; the others
    /// (concurrent ones wait for it) get the same bytes.
    pub fn rendered(&self, render: impl FnOnce(&T) -> Bytes) -> Bytes {
        self.0.rendered.get_or_init(|| render(&self.0.event)).clone()
    }
}

// Not derived: that would require `T: Clone`, which an `Arc` does not need.
impl<T> Clone for Published<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Deref for Published<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.event
    }
}

impl<T: PartialEq> PartialEq<T> for Published<T> {
    fn eq(&self, other: &T) -> bool {
        self.0.event == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rendering_is_shared_by_every_clone() {
        let published = Published::new(7_u32);
        let copy = published.clone();
        let first = published.rendered(|n| Bytes::from(format!("n={n}")));
        let second = copy.rendered(|_| panic!("rendered twice"));
        assert_eq!(first, "n=7");
        assert_eq!(first.as_ptr(), second.as_ptr());
        assert_eq!(*copy, 7);
        assert!(copy == 7);
    }
}
