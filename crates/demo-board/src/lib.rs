#![doc = include_str!("../README.md")]
pub mod ats;
pub mod careers;
pub mod catalog;
mod faults;
mod html;
mod server;

pub use faults::{FaultAction, FaultRule, FaultTarget, Faults};
pub use html::text_of;
pub use server::{DemoBoard, PAGE_SIZE, RequestCounts};
