//! The journaled image write path of rbdj.
//!
//! * [`image`]: the [`image::BlockImage`] trait and three images (memory, sparse file, object
//!   store).

pub mod image;
