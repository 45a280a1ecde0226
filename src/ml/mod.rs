//! Machine-learned models of customers: the features they see, the training-table export
//! (churn and spend labels), model cards and their ONNX sessions, ONNX Runtime loading, and
//! drift of what they score from what they were trained on.

pub mod drift;
pub mod export;
pub mod features;
pub mod model;
pub mod runtime;
