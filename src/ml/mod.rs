//! Machine-learned churn: the customer features a churn model sees, the training-table
//! export, the model's description (`churn.json`), ONNX Runtime loading and the scoring
//! system.

pub mod export;
pub mod features;
pub mod model;
pub mod runtime;
