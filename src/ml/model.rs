//! A scoring model (the churn classifier, the spend regressor): its description, a model
//! card such as `churn.json` or `spend.json`, the ONNX session, and the checks made before a
//! run starts — so a wrong file, a wrong input, a feature count that does not match or an
//! output that is not a probability (or, for a regressor, an amount of at least 0)
//! is a clear error naming the file, never a crash mid-run.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use serde::Deserialize;
use thiserror::Error;

use super::features::{Feature, FeatureSpec};
use super::runtime::{self, RuntimeError};

/// Rows per ONNX Runtime call: large enough to amortise the call, small enough to keep the
/// feature buffer modest at any population size.
pub const SCORING_BATCH: usize = 65_536;

/// The values each feature takes in the probe batch scored before a run: zero, the ends
/// and middle of a share, and the counts and days a customer plausibly has.
pub const PROBE_VALUES: [f32; 5] = [0.0, 0.5, 1.0, 10.0, 100.0];

/// The label a model was trained on.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelSpec {
    /// In words.
    pub definition: String,
    /// Churned within this many days after the snapshot.
    pub horizon_days: u32,
}

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The probability of the positive class (churn), in column `probability_column` of the
    /// output.
    #[default]
    Classification,
    /// An amount (expected spend over the label's horizon, in the scenario's currency),
    /// the output's first column.
    Regression,
}

/// A model card (`churn.json`, `spend.json`): what the model expects and gives. Unknown
/// fields (metrics, provenance) are kept in the file for people and ignored here.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    /// Version number of the model.
    pub version: u32,
    /// What it predicts (classification when the card does not say).
    #[serde(default)]
    pub kind: Kind,
    /// The ONNX file, relative to the JSON file.
    pub model: String,
    /// Input tensor name.
    pub input: String,
    /// Output tensor with class probabilities, or the predicted amounts.
    pub output: String,
    /// Column of the positive (churn) class; required of a classifier.
    #[serde(default)]
    pub probability_column: Option<usize>,
    /// Feature names, in input order.
    pub features: Vec<String>,
    /// The label definition.
    pub label: LabelSpec,
    /// The training reference for drift monitoring, if the card keeps one.
    #[serde(default)]
    pub reference: Option<super::drift::Reference>,
}

impl ModelSpec {
    /// The output's column holding the prediction: the positive class's probability, or a
    /// regressor's only column.
    pub fn column(&self) -> usize {
        match self.kind {
            Kind::Classification => self.probability_column.unwrap_or(1),
            Kind::Regression => 0,
        }
    }
}

/// Everything that can be wrong with a scoring model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The description cannot be read.
    #[error("cannot read model description `{path}`: {reason}\n  hint: {hint}")]
    Spec {
        /// The JSON path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// How to fix it.
        hint: String,
    },
    /// The ONNX file is missing or is not a model ONNX Runtime can load.
    #[error("model `{path}`: {reason}\n  hint: {hint}")]
    Model {
        /// The ONNX path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// How to fix it.
        hint: String,
    },
    /// ONNX Runtime could not be made ready.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Scoring failed at run time.
    #[error("scoring failed: {0}")]
    Scoring(String),
}

/// A loaded, checked scoring model.
pub struct OnnxModel {
    /// Its description.
    pub spec: ModelSpec,
    /// The features, resolved against the scenario's personas.
    pub features: FeatureSpec,
    /// Where the ONNX file is.
    pub path: PathBuf,
    session: Session,
}

impl OnnxModel {
    /// Loads a model card (`churn.json`, `spend.json`) and its ONNX file and checks that
    /// they agree with each other and with Bazaar's features.
    pub fn load(
        spec_path: &Path,
        personas: &[String],
        ort_lib: Option<&Path>,
    ) -> Result<Self, ModelError> {
        let spec_err = |reason: String, hint: &str| ModelError::Spec {
            path: spec_path.to_path_buf(),
            reason,
            hint: hint.to_owned(),
        };
        let text = std::fs::read_to_string(spec_path)
            .map_err(|e| spec_err(e.to_string(), "the path is relative to the scenario file"))?;
        let spec: ModelSpec = serde_json::from_str(&text).map_err(|e| {
            spec_err(
                e.to_string(),
                "see models/README.md for the fields a model card needs",
            )
        })?;
        if spec.kind == Kind::Classification && spec.probability_column.is_none() {
            return Err(spec_err(
                "a classifier's card names no `probability_column`".to_owned(),
                "add \"probability_column\": 1 (the positive class's column of the output), or \"kind\": \"regression\"",
            ));
        }
        let mut features = Vec::new();
        for name in &spec.features {
            features.push(Feature::parse(name).ok_or_else(|| {
                spec_err(
                    format!("unknown feature `{name}`"),
                    "Bazaar's features are listed in models/README.md",
                )
            })?);
        }
        if let Some(reference) = &spec.reference {
            reference.check(&spec.features).map_err(|reason| {
                spec_err(
                    reason,
                    "models/reference.py writes a reference from a feature table",
                )
            })?;
        }
        let path = spec_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&spec.model);
        let model_err = |reason: String, hint: &str| ModelError::Model {
            path: path.clone(),
            reason,
            hint: hint.to_owned(),
        };
        if !path.is_file() {
            return Err(model_err(
                "no such file".to_owned(),
                "`model` in the card is relative to the card",
            ));
        }
        let environment = runtime::environment(ort_lib)?;
        let session = Session::builder(&environment)
            .and_then(|mut b| {
                b = b.with_intra_threads(1)?;
                b.commit_from_file(&path)
            })
            .map_err(|e| {
                model_err(
                    format!("not a model ONNX Runtime can load ({e})"),
                    "export it with skl2onnx (see models/train_churn.py)",
                )
            })?;
        let card = spec_path
            .file_name()
            .map_or("the card".into(), |n| n.to_string_lossy());
        check_io(&session, &spec, &card).map_err(|reason| {
            model_err(
                reason,
                "the ONNX file and its card must describe the same model",
            )
        })?;
        let mut model = Self {
            features: FeatureSpec::new(features, personas),
            spec,
            path: path.clone(),
            session,
        };
        model.probe().map_err(|reason| {
            model_err(
                reason,
                match model.spec.kind {
                    Kind::Classification => {
                        "the output the card names must be the positive class's probability, in [0, 1]"
                    }
                    Kind::Regression => {
                        "the output the card names must be an amount of at least 0 (a spend model's expected spend)"
                    }
                },
            )
        })?;
        Ok(model)
    }

    /// Scores a probe batch — every feature at each of [`PROBE_VALUES`], and each feature
    /// alone at each value with the others at 0 — and refuses a model whose scores are not
    /// probabilities (outside [0, 1], or not a number), or for a regressor amounts (below 0,
    /// or not a number).
    fn probe(&mut self) -> Result<(), String> {
        let width = self.features.len();
        let mut x = Vec::new();
        for &v in &PROBE_VALUES {
            x.extend(std::iter::repeat_n(v, width));
            for f in 0..width {
                let start = x.len();
                x.extend(std::iter::repeat_n(0.0, width));
                x[start + f] = v;
            }
        }
        let rows = x.len() / width.max(1);
        let mut out = Vec::with_capacity(rows);
        self.score(&x, rows, &mut out).map_err(|e| match e {
            ModelError::Scoring(reason) => format!("on a probe batch of {rows} rows: {reason}"),
            other => other.to_string(),
        })
    }

    /// Scores `rows` feature rows laid out row-major in `x`, appending the prediction of
    /// each to `out`: a classifier's probability of the positive class, a regressor's amount.
    pub fn score(&mut self, x: &[f32], rows: usize, out: &mut Vec<f32>) -> Result<(), ModelError> {
        let width = self.features.len();
        let column = self.column();
        let classes = column + 1;
        for start in (0..rows).step_by(SCORING_BATCH) {
            let n = SCORING_BATCH.min(rows - start);
            let input =
                TensorRef::from_array_view(([n, width], &x[start * width..(start + n) * width]))
                    .map_err(|e| ModelError::Scoring(e.to_string()))?;
            let outputs = self
                .session
                .run(ort::inputs![self.spec.input.as_str() => input])
                .map_err(|e| ModelError::Scoring(e.to_string()))?;
            let value = outputs
                .get(self.spec.output.as_str())
                .ok_or_else(|| ModelError::Scoring(format!("no output `{}`", self.spec.output)))?;
            let (shape, probs) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| ModelError::Scoring(e.to_string()))?;
            // A regressor's output may be [rows] or [rows, 1].
            let stride = if shape.len() == 1 {
                1
            } else {
                shape.last().copied().unwrap_or(1).max(1) as usize
            };
            if stride < classes || probs.len() != n * stride {
                return Err(ModelError::Scoring(format!(
                    "output shape {:?} does not hold {n} rows of {classes} values",
                    &shape[..]
                )));
            }
            let first = out.len();
            out.extend(probs.chunks_exact(stride).map(|row| row[column]));
            let (valid, what): (fn(&f32) -> bool, _) = match self.spec.kind {
                Kind::Classification => (|p| (0.0..=1.0).contains(p), "a probability in [0, 1]"),
                // An exponential link overflows to infinity on the probe's absurd rows: an
                // amount past f32's range is still an amount.
                Kind::Regression => (|v| *v >= 0.0, "an amount of at least 0"),
            };
            if let Some((i, p)) = out[first..].iter().enumerate().find(|(_, p)| !valid(p)) {
                let row = &x[(start + i) * width..(start + i + 1) * width];
                return Err(ModelError::Scoring(format!(
                    "the model gave {p} for a row, which is not {what} (features: {})",
                    self.spec
                        .features
                        .iter()
                        .zip(row)
                        .map(|(name, v)| format!("{name}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The output's column holding the prediction.
    fn column(&self) -> usize {
        self.spec.column()
    }
}

/// Checks the session's input and output against the description.
fn check_io(session: &Session, spec: &ModelSpec, card: &str) -> Result<(), String> {
    let inputs = session.inputs();
    if inputs.len() != 1 {
        return Err(format!(
            "the model has {} inputs; Bazaar feeds exactly one",
            inputs.len()
        ));
    }
    let input = &inputs[0];
    if input.name() != spec.input {
        return Err(format!(
            "the model's input is named `{}`, {card} says `{}`",
            input.name(),
            spec.input
        ));
    }
    match input.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            if *ty != TensorElementType::Float32 {
                return Err(format!("the input is {ty:?}; Bazaar feeds float32"));
            }
            let dims: Vec<i64> = shape.iter().copied().collect();
            if dims.len() != 2 {
                return Err(format!(
                    "the input has shape {dims:?}; expected [rows, features]"
                ));
            }
            if dims[1] != spec.features.len() as i64 {
                return Err(format!(
                    "the input takes {} features per row, {card} lists {}",
                    dims[1],
                    spec.features.len()
                ));
            }
        }
        other => return Err(format!("the input is {other}, not a tensor")),
    }
    let Some(output) = session.outputs().iter().find(|o| o.name() == spec.output) else {
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        return Err(format!(
            "no output named `{}` (outputs: {})",
            spec.output,
            names.join(", ")
        ));
    };
    let column = spec.column();
    match output.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            let dims: Vec<i64> = shape.iter().copied().collect();
            let shaped = match spec.kind {
                Kind::Classification => dims.len() == 2,
                Kind::Regression => dims.len() == 1 || (dims.len() == 2 && dims[1] <= 1),
            };
            if *ty != TensorElementType::Float32
                || !shaped
                || (dims.len() == 2 && dims[1] >= 0 && dims[1] as usize <= column)
            {
                return Err(match spec.kind {
                    Kind::Classification => format!(
                        "output `{}` is {ty:?} {dims:?}, not float32 probabilities [rows, classes] with column {column}",
                        spec.output
                    ),
                    Kind::Regression => format!(
                        "output `{}` is {ty:?} {dims:?}, not float32 amounts [rows] or [rows, 1]",
                        spec.output
                    ),
                });
            }
            Ok(())
        }
        other => Err(format!(
            "output `{}` is {other}, not a tensor of predictions (export with zipmap disabled)",
            spec.output
        )),
    }
}
