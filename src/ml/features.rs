//! Customer features for churn models. A model's `churn.json` lists the feature names it was
//! trained on, in order; [`FeatureSpec`] maps them to extractors, so a model trained with a
//! subset or another order still gets exactly the columns it expects.
//!
//! Every feature is computed from the customer's state at the end of a day, never from the
//! future, so a training table built from them has no leakage.

use bevy_utils::Parallel;

use crate::components::*;

/// Days-since values are capped here (a lapsed customer is simply "long ago").
pub const MAX_DAYS_SINCE: f32 = 90.0;

/// One feature a churn model can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feature {
    /// Loyalty, 0..1.
    Loyalty,
    /// Days since the last purchase (since joining if never bought), capped at 90.
    DaysSincePurchase,
    /// 1 if the customer has never bought.
    NeverBought,
    /// Recent visits that bought nothing or were trimmed (decaying count).
    UnmetRecent,
    /// Recent budget trims (decaying count).
    TrimsRecent,
    /// Share of the monthly budget left (1 without a budget).
    BudgetLeftShare,
    /// Visits per week since joining.
    VisitsPerWeek,
    /// Purchases per week since joining.
    PurchasesPerWeek,
    /// ln(1 + mean basket in rupees).
    LogMeanBasket,
    /// Age in years.
    Age,
    /// ln(monthly income in rupees).
    LogIncome,
    /// 1 if the customer's persona has this name.
    Persona(String),
}

impl Feature {
    /// The name used in feature tables and `churn.json`.
    pub fn name(&self) -> String {
        match self {
            Feature::Loyalty => "loyalty".into(),
            Feature::DaysSincePurchase => "days_since_purchase".into(),
            Feature::NeverBought => "never_bought".into(),
            Feature::UnmetRecent => "unmet_recent".into(),
            Feature::TrimsRecent => "trims_recent".into(),
            Feature::BudgetLeftShare => "budget_left_share".into(),
            Feature::VisitsPerWeek => "visits_per_week".into(),
            Feature::PurchasesPerWeek => "purchases_per_week".into(),
            Feature::LogMeanBasket => "log_mean_basket".into(),
            Feature::Age => "age".into(),
            Feature::LogIncome => "log_income".into(),
            Feature::Persona(p) => format!("persona={p}"),
        }
    }

    /// Parses a feature name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "loyalty" => Feature::Loyalty,
            "days_since_purchase" => Feature::DaysSincePurchase,
            "never_bought" => Feature::NeverBought,
            "unmet_recent" => Feature::UnmetRecent,
            "trims_recent" => Feature::TrimsRecent,
            "budget_left_share" => Feature::BudgetLeftShare,
            "visits_per_week" => Feature::VisitsPerWeek,
            "purchases_per_week" => Feature::PurchasesPerWeek,
            "log_mean_basket" => Feature::LogMeanBasket,
            "age" => Feature::Age,
            "log_income" => Feature::LogIncome,
            _ => Feature::Persona(name.strip_prefix("persona=")?.to_owned()),
        })
    }
}

/// The components feature extraction reads, as a query.
pub type Observed = (
    &'static AgentId,
    &'static Persona,
    &'static Budget,
    &'static Loyalty,
    &'static Ledger,
    &'static Engagement,
);

/// What the extractor reads of one customer.
#[derive(Debug, Clone, Copy)]
pub struct CustomerState<'a> {
    /// Persona index.
    pub persona: u8,
    /// Demographics (drawn again; zeros when the spec has no feature that reads them).
    pub demographics: Demographics,
    /// Budget.
    pub budget: &'a Budget,
    /// Loyalty.
    pub loyalty: &'a Loyalty,
    /// Ledger.
    pub ledger: &'a Ledger,
    /// Engagement.
    pub engagement: &'a Engagement,
}

/// The contiguous component slices feature extraction reads (one table chunk).
pub type Columns<'a> = (
    &'a [Persona],
    &'a [Budget],
    &'a [Loyalty],
    &'a [Ledger],
    &'a [Engagement],
);

impl<'a> CustomerState<'a> {
    /// The state of row `i` of a table chunk's columns, with the customer's demographics.
    #[inline]
    pub fn at(columns: Columns<'a>, i: usize, demographics: Demographics) -> Self {
        let (persona, budget, loyalty, ledger, engagement) = columns;
        Self {
            persona: persona[i].0,
            demographics,
            budget: &budget[i],
            loyalty: &loyalty[i],
            ledger: &ledger[i],
            engagement: &engagement[i],
        }
    }
}

/// An ordered list of features, resolved against the scenario's personas.
#[derive(Debug, Clone)]
pub struct FeatureSpec {
    features: Vec<Feature>,
    /// For each `Feature::Persona` column, the scenario persona index it matches (if any).
    persona_index: Vec<Option<u8>>,
}

impl FeatureSpec {
    /// Every built-in feature plus one persona indicator per scenario persona: what the
    /// training export writes.
    pub fn all(personas: &[String]) -> Self {
        let mut features = vec![
            Feature::Loyalty,
            Feature::DaysSincePurchase,
            Feature::NeverBought,
            Feature::UnmetRecent,
            Feature::TrimsRecent,
            Feature::BudgetLeftShare,
            Feature::VisitsPerWeek,
            Feature::PurchasesPerWeek,
            Feature::LogMeanBasket,
            Feature::Age,
            Feature::LogIncome,
        ];
        features.extend(personas.iter().map(|p| Feature::Persona(p.clone())));
        Self::new(features, personas)
    }

    /// A spec for these features; persona columns are matched to the scenario's personas by
    /// name (a persona the scenario lacks is a column of zeros).
    pub fn new(features: Vec<Feature>, personas: &[String]) -> Self {
        let persona_index = features
            .iter()
            .map(|f| match f {
                Feature::Persona(name) => personas.iter().position(|p| p == name).map(|i| i as u8),
                _ => None,
            })
            .collect();
        Self {
            features,
            persona_index,
        }
    }

    /// The features, in order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Whether a feature reads age or income (which are drawn again for each row).
    pub fn reads_demographics(&self) -> bool {
        self.features
            .iter()
            .any(|f| matches!(f, Feature::Age | Feature::LogIncome))
    }

    /// Writes one customer's features on `day` into `out` (`out.len() == self.len()`).
    #[inline]
    pub fn extract(&self, c: &CustomerState<'_>, day: u32, out: &mut [f32]) {
        let tenure_days = (day as i32 - i32::from(c.engagement.joined) + 1).max(1) as f32;
        let weeks = tenure_days / 7.0;
        for (k, f) in self.features.iter().enumerate() {
            out[k] = match f {
                Feature::Loyalty => c.loyalty.0,
                Feature::DaysSincePurchase => match c.engagement.days_since_purchase(day) {
                    Some(d) => (d as f32).min(MAX_DAYS_SINCE),
                    None => tenure_days.min(MAX_DAYS_SINCE),
                },
                Feature::NeverBought => f32::from(u8::from(
                    c.engagement.last_purchase == Engagement::NEVER_BOUGHT,
                )),
                Feature::UnmetRecent => c.engagement.unmet,
                Feature::TrimsRecent => c.engagement.trims,
                Feature::BudgetLeftShare => {
                    if c.budget.is_limited() && c.budget.monthly > 0 {
                        (c.budget.left as f32 / c.budget.monthly as f32).clamp(0.0, 1.0)
                    } else {
                        1.0
                    }
                }
                Feature::VisitsPerWeek => c.ledger.visits as f32 / weeks,
                Feature::PurchasesPerWeek => c.ledger.purchases as f32 / weeks,
                Feature::LogMeanBasket => {
                    if c.ledger.purchases == 0 {
                        0.0
                    } else {
                        (c.ledger.spent as f32 / 100.0 / c.ledger.purchases as f32).ln_1p()
                    }
                }
                Feature::Age => f32::from(c.demographics.age),
                Feature::LogIncome => (c.demographics.income.max(1) as f32).ln(),
                Feature::Persona(_) => {
                    f32::from(u8::from(self.persona_index[k] == Some(c.persona)))
                }
            };
        }
    }
}

/// One thread's share of a [`FeatureBatch`].
pub struct ThreadRows<K> {
    keys: Vec<(u32, K)>,
    values: Vec<f32>,
}

impl<K> Default for ThreadRows<K> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<K> ThreadRows<K> {
    /// Extracts the features of every active customer of one table chunk; `key` gives each
    /// row's key from its index in the chunk.
    #[inline]
    pub fn push_active(
        &mut self,
        ids: &[AgentId],
        columns: Columns<'_>,
        key: impl Fn(usize) -> K,
        spec: &FeatureSpec,
        model: &crate::sim::Model,
        day: u32,
    ) {
        let (persona, engagement) = (columns.0, columns.4);
        let redraw = spec.reads_demographics();
        for i in 0..ids.len() {
            if engagement[i].is_active() {
                let demographics = if redraw {
                    model.demographics(ids[i], persona[i])
                } else {
                    Demographics::default()
                };
                let state = CustomerState::at(columns, i, demographics);
                self.push(ids[i].0, key(i), spec, &state, day);
            }
        }
    }

    /// Extracts one customer's features on `day`.
    #[inline]
    pub fn push(
        &mut self,
        agent: u32,
        key: K,
        spec: &FeatureSpec,
        state: &CustomerState<'_>,
        day: u32,
    ) {
        self.keys.push((agent, key));
        let start = self.values.len();
        self.values.resize(start + spec.len(), 0.0);
        spec.extract(state, day, &mut self.values[start..]);
    }
}

/// Features of many customers, extracted in parallel (each thread into its own
/// [`ThreadRows`]) and then put in customer-id order, so everything downstream — batches,
/// scores, draws, written rows — is the same whatever the threads did. Buffers are reused
/// from one batch to the next.
pub struct FeatureBatch<K: Send> {
    threads: Parallel<ThreadRows<K>>,
    order: Vec<(u32, u32, u32)>,
    /// `(customer id, key)` of each row, in customer-id order.
    pub keys: Vec<(u32, K)>,
    /// The rows' features, row-major, in the same order.
    pub x: Vec<f32>,
}

impl<K: Send> Default for FeatureBatch<K> {
    fn default() -> Self {
        Self {
            threads: Parallel::default(),
            order: Vec::new(),
            keys: Vec::new(),
            x: Vec::new(),
        }
    }
}

impl<K: Send + Copy> FeatureBatch<K> {
    /// This thread's rows (for `for_each_init`).
    pub fn local(&self) -> impl std::ops::DerefMut<Target = ThreadRows<K>> + '_ {
        self.threads.borrow_local_mut()
    }

    /// Orders every thread's rows by customer id into `keys` and `x`, and empties the
    /// thread buffers.
    pub fn finish(&mut self, width: usize) {
        self.order.clear();
        self.keys.clear();
        self.x.clear();
        let threads: Vec<&mut ThreadRows<K>> = self.threads.iter_mut().collect();
        for (t, rows) in threads.iter().enumerate() {
            self.order.extend(
                rows.keys
                    .iter()
                    .enumerate()
                    .map(|(k, key)| (key.0, t as u32, k as u32)),
            );
        }
        self.order.sort_unstable_by_key(|o| o.0);
        for &(_, t, k) in &self.order {
            let (t, k) = (t as usize, k as usize);
            self.keys.push(threads[t].keys[k]);
            self.x
                .extend_from_slice(&threads[t].values[k * width..(k + 1) * width]);
        }
        for rows in threads {
            rows.keys.clear();
            rows.values.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let spec = FeatureSpec::all(&["premium".into(), "family".into()]);
        for f in spec.features() {
            assert_eq!(Feature::parse(&f.name()).as_ref(), Some(f));
        }
        assert_eq!(Feature::parse("colour"), None);
    }

    #[test]
    fn extraction_from_a_hand_built_customer() {
        let personas = ["premium".to_owned(), "family".to_owned()];
        let spec = FeatureSpec::new(
            vec![
                Feature::Persona("family".into()),
                Feature::Loyalty,
                Feature::DaysSincePurchase,
                Feature::NeverBought,
                Feature::BudgetLeftShare,
                Feature::PurchasesPerWeek,
                Feature::LogMeanBasket,
                Feature::LogIncome,
                Feature::Persona("senior".into()),
            ],
            &personas,
        );
        let demographics = Demographics {
            age: 40,
            income: 50_000,
        };
        let budget = Budget {
            monthly: 10_000,
            left: 2_500,
        };
        let ledger = Ledger {
            visits: 5,
            purchases: 4,
            spent: 400_000,
        };
        let engagement = Engagement {
            unmet: 0.5,
            trims: 0.0,
            joined: 0,
            churned: Engagement::ACTIVE,
            last_offer: Engagement::NEVER_OFFERED,
            last_purchase: 10,
        };
        let c = CustomerState {
            persona: 1,
            demographics,
            budget: &budget,
            loyalty: &Loyalty(0.75),
            ledger: &ledger,
            engagement: &engagement,
        };
        let mut out = vec![0.0; spec.len()];
        spec.extract(&c, 13, &mut out);
        let expected = [
            1.0,
            0.75,
            3.0,
            0.0,
            0.25,
            4.0 / 2.0,
            (1000.0f32).ln_1p(),
            (50_000f32).ln(),
            0.0,
        ];
        for (a, b) in out.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
    }
}
