//! One joint training sample, end to end (DESIGN.md §7): a task sample's prompt becomes μ₁; its
//! ground-truth program φ* is executed step by step with teacher forcing. For each step the
//! agent's forward pass over the new tokens (continuing a KV cache, so the whole sequence is
//! processed once) gives the ϕ of that step's `<mod>` markers; the runtime executes the step
//! with the model's own vision network ([`UnetBackend`] in its training flavour); the step's
//! feedback (text, and ε° at `<vol>` slots) extends the sequence. The loss is the cross-entropy
//! on program tokens plus λ × the soft Dice (plus, when `bce_weight` > 0, that weight × the
//! voxel-wise binary cross-entropy) of every `generate` against the true mask, and one
//! backward pass reaches agent and vision together: through ϕ, Dice trains the ϕ head and the
//! decoder; through ε°, the agent's later tokens train the encoder.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use agent::{AgentSequence, AgentTokenizer, KvCache, VolumeInfo};
use burn::tensor::activation::softplus;
use burn::tensor::{Int, Tensor, TensorData};
use runtime::library::vision_calls::MASK_THRESHOLD;
use runtime::{FeedbackItem, Limits, Phi, Session, VisionBackend};
use synth::{Hemisphere, Vocabulary};
use tasks::oracle::{oracle_phis, oracle_session};
use tasks::program::{GenerateTarget, ModMeaning};
use tasks::TaskSample;
use vision::side_gate::SideGate;
use vision::tensor::images_to_tensor;
use voxel::Image;

use crate::backend::{Generated, UnetBackend};
use crate::error::{Result, TrainError};
use crate::loss::soft_dice_loss;
use crate::model::JointNet;
use crate::phi_namer::{marker_names, PhiNamer};
use crate::preprocess::{Modality, Preprocessing};

/// Seconds spent in each stage of one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct StageSeconds {
    /// Synthesising the task sample (measured by the sampler).
    pub synthesis: f64,
    /// Agent forward passes (all chunks).
    pub agent_forward: f64,
    /// Runtime steps, including the vision forward passes they make.
    pub runtime: f64,
    /// Of `runtime`: inside vision `encode`/`generate` calls.
    pub vision_forward: f64,
    /// Building the loss terms (targets, Dice, cross-entropy).
    pub loss: f64,
    /// The backward pass through agent and vision.
    pub backward: f64,
}

impl StageSeconds {
    /// Adds `other` stage by stage.
    pub fn add(&mut self, other: &StageSeconds) {
        self.synthesis += other.synthesis;
        self.agent_forward += other.agent_forward;
        self.runtime += other.runtime;
        self.vision_forward += other.vision_forward;
        self.loss += other.loss;
        self.backward += other.backward;
    }

    /// Every stage divided by `n`.
    pub fn scaled(&self, n: f64) -> StageSeconds {
        StageSeconds {
            synthesis: self.synthesis / n,
            agent_forward: self.agent_forward / n,
            runtime: self.runtime / n,
            vision_forward: self.vision_forward / n,
            loss: self.loss / n,
            backward: self.backward / n,
        }
    }
}

/// The loss of one sample, with the graph for the backward pass.
pub struct SampleLoss {
    /// Cross-entropy + λ × Σ soft Dice, shape `[1]`.
    pub total: Tensor<1>,
    /// Mean cross-entropy over the program tokens.
    pub cross_entropy: f64,
    /// Σ over `generate` calls of (1 − soft Dice), averaged over streams.
    pub dice: f64,
    /// Σ over `generate` calls of the voxel-wise binary cross-entropy.
    pub bce: f64,
    /// Σ over `generate` calls of the Dice loss, unweighted, with its graph (`None` when the
    /// program generated nothing).
    pub dice_loss: Option<Tensor<1>>,
    /// Number of `generate` calls scored.
    pub generated: usize,
    /// The side gate's teaching term, unweighted ([`side_gate_term`]; `None` without one).
    pub side: Option<f64>,
    /// Mean cross-entropy of the target names read from ϕ ([`crate::phi_namer`]; `None`
    /// without a namer or a generator marker).
    pub phi_name: Option<f64>,
    /// Steps whose execution reported an error (expected while the vision net is untrained:
    /// e.g. an empty mask has no largest component).
    pub step_errors: usize,
    /// How each scored `generate` call came out (for the per-target learning curves).
    pub masks: Vec<MaskScore>,
    /// Where the time went.
    pub seconds: StageSeconds,
}

/// How one scored `generate` call came out against its true mask, pooled over its streams.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskScore {
    /// The target in words, as the program's comment names it (`left hippocampus`).
    pub target: String,
    /// Voxels of the true mask on the network's grid.
    pub truth_voxels: usize,
    /// Voxels the network puts at or above the runtime's mask threshold (what a program gets).
    pub predicted_voxels: usize,
    /// Dice of the thresholded prediction (1 when both are empty).
    pub dice: f64,
    /// The soft Dice loss the sample was trained with.
    pub soft_dice_loss: f64,
    /// Whether the mask was one of the sample's extra targets
    /// ([`sample_loss_with_extras`]), not a `generate` of its program.
    pub extra: bool,
}

impl MaskScore {
    /// Scores the probabilities `predicted` against the 0/1 `truth` (same length).
    pub fn of(target: &str, predicted: &[f32], truth: &[f32], soft_dice_loss: f64) -> MaskScore {
        let mut truth_voxels = 0;
        let mut predicted_voxels = 0;
        let mut both = 0;
        for (&p, &t) in predicted.iter().zip(truth) {
            let p = p >= MASK_THRESHOLD;
            let t = t >= 0.5;
            truth_voxels += usize::from(t);
            predicted_voxels += usize::from(p);
            both += usize::from(p && t);
        }
        let sum = truth_voxels + predicted_voxels;
        MaskScore {
            target: target.to_string(),
            truth_voxels,
            predicted_voxels,
            dice: if sum == 0 {
                1.0
            } else {
                2.0 * both as f64 / sum as f64
            },
            soft_dice_loss,
            extra: false,
        }
    }
}

/// Everything the sample loss needs besides the sample.
pub struct LossContext<'a> {
    /// The networks (on an autodiff device for training).
    pub net: &'a JointNet,
    /// The tokenizer.
    pub tokenizer: &'a AgentTokenizer,
    /// The model's preprocessing.
    pub preprocessing: &'a Preprocessing,
    /// λ of the Dice term.
    pub dice_weight: f64,
    /// Weight of the binary cross-entropy of generated volumes (0: Dice alone, as the paper).
    pub bce_weight: f64,
    /// Weight of the side gate's teaching term ([`side_gate_term`]; 0: none, as in
    /// validation).
    pub side_gate_weight: f64,
    /// Cap of a lesion mask's foreground weight in that cross-entropy
    /// ([`crate::loss::weighted_bce_with_logits_loss`]; 1: the plain voxel mean).
    pub lesion_positive_weight_max: f64,
    /// The training-only probe reading each generator's target name from its ϕ, and the
    /// weight of its loss (`None`: no such term, as in validation).
    pub phi_namer: Option<(&'a PhiNamer, f64)>,
}

impl LossContext<'_> {
    /// The weighted naming loss of the ϕ rows `phis` of markers with `meanings` (the caller
    /// guarantees one row per meaning), or `None` without a namer or a generator among them.
    fn naming_term(
        &self,
        phis: Tensor<2>,
        meanings: &[&ModMeaning],
    ) -> Result<Option<(Tensor<1>, f64)>> {
        let Some((namer, weight)) = self.phi_namer else {
            return Ok(None);
        };
        let names = marker_names(self.tokenizer, meanings)?;
        let Some(loss) = namer.loss(phis, &names)? else {
            return Ok(None);
        };
        let value = scalar(loss.clone())?;
        Ok(Some((loss.mul_scalar(weight), value)))
    }
}

/// The agent's view of an input volume, with its acquisition date when `dated`.
pub fn volume_info(input: &tasks::InputVolume, dated: bool) -> VolumeInfo {
    VolumeInfo {
        name: input.name.clone(),
        modality: Some(input.modality.clone()),
        acquired: dated.then(|| input.date.clone()),
    }
}

/// Whether a training sample shows its inputs' acquisition dates. Users often give scans
/// without one (a NIfTI file has none), and a model that only ever saw dated inputs derailed
/// on them (session 8: every real-scan question failed undated and ran with a date). So one
/// single-visit sample in three hides them, chosen by its seed; samples whose inputs span
/// several dates always show them, since which scan came first is part of the question.
pub fn shows_dates(sample: &TaskSample) -> bool {
    let first = sample.inputs.first().map(|i| &i.date);
    let one_visit = sample.inputs.iter().all(|i| Some(&i.date) == first);
    !one_visit
        || !sample
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .is_multiple_of(3)
}

/// The agent's view of every input of `sample` ([`shows_dates`]).
pub fn volume_infos(sample: &TaskSample) -> Vec<VolumeInfo> {
    let dated = shows_dates(sample);
    sample
        .inputs
        .iter()
        .map(|i| volume_info(i, dated))
        .collect()
}

/// The loss of `sample` under teacher forcing (see the module docs).
pub fn sample_loss(ctx: &LossContext<'_>, sample: &TaskSample) -> Result<SampleLoss> {
    sample_loss_with_extras(ctx, sample, &[])
}

/// [`sample_loss`] with one more mask per target of `extras`, generated from the sample's first
/// encoding: after the program, the agent reads one more step,
/// `let extra = generate(e /* target */ <mod>);`, whose ϕ steers the generator over the
/// features the program's `encode` already computed. Each costs the generator's forward and
/// backward passes and a few tokens of the agent, not a synthesised subject and an encoder
/// pass, and a lesion class the subject lacks asks for an empty mask: what "is there a
/// haemorrhage?" on a healthy head needs. The extra steps are not part of the program: no
/// cross-entropy is taken on them. A target whose truth is unknown on the encoded volumes
/// (a derived volume of several sessions) is left out.
pub fn sample_loss_with_extras(
    ctx: &LossContext<'_>,
    sample: &TaskSample,
    extras: &[GenerateTarget],
) -> Result<SampleLoss> {
    let net = ctx.net;
    let tok = ctx.tokenizer;
    let device = net.agent.device();
    let mut seconds = StageSeconds::default();

    let infos = volume_infos(sample);
    let mut seq = AgentSequence::initial(tok, &sample.prompt.text, &infos)?;
    let modalities = sample
        .inputs
        .iter()
        .map(|i| (i.image.clone(), Modality::of_contrast(i.contrast)))
        .collect();
    let backend = Arc::new(UnetBackend::training(
        net.vision.clone(),
        device.clone(),
        ctx.preprocessing.clone(),
        modalities,
    ));
    let dyn_backend: Arc<dyn VisionBackend> = backend.clone();
    let mut session = Session::new(sample.named_images(), dyn_backend, Limits::default())?;
    let input_sessions = sample.input_sessions();

    let mut cache = KvCache::new(&net.agent.decoder);
    let mut processed = 0usize;
    let mut hidden_chunks: Vec<Tensor<3>> = Vec::new();
    let mut pending_eps: Vec<Tensor<2>> = Vec::new();
    let mut dice_terms: Vec<Tensor<1>> = Vec::new();
    let mut bce_terms: Vec<Tensor<1>> = Vec::new();
    let mut naming_rows: Vec<Tensor<2>> = Vec::new();
    let mut naming_meanings: Vec<&ModMeaning> = Vec::new();
    // The ϕ row of every generator with a target, and the side it asks for.
    let mut side_rows: Vec<Tensor<2>> = Vec::new();
    let mut sides: Vec<Hemisphere> = Vec::new();
    let teach_sides = ctx.side_gate_weight > 0.0 && net.vision.side_gate.is_some();
    let mut step_errors = 0usize;
    let mut masks = Vec::new();

    for (index, step) in sample.program.iter().enumerate() {
        seq.push_step(tok, &step.code)?;
        let started = Instant::now();
        let chunk = &seq.tokens()[processed..];
        let vol_positions = chunk_positions(seq.vol_positions(), processed);
        let eps =
            (!pending_eps.is_empty()).then(|| Tensor::cat(std::mem::take(&mut pending_eps), 0));
        let x = net
            .agent
            .input_embeddings(chunk, 1, chunk.len(), &vol_positions, eps)?;
        let hidden = net.agent.forward_hidden(x, Some(&mut cache))?;
        let phi_positions = chunk_positions(seq.phi_positions(), processed);
        let phi_rows = net.agent.phi_at(hidden.clone(), &phi_positions)?;
        processed = seq.len();
        hidden_chunks.push(hidden);
        let phis = match phi_rows {
            Some(rows) => {
                if ctx.phi_namer.is_some() && rows.dims()[0] == step.mods.len() {
                    naming_rows.push(rows.clone());
                    naming_meanings.extend(step.mods.iter());
                }
                if teach_sides && rows.dims()[0] == step.mods.len() {
                    if let Some((generators, their_sides)) = generator_rows(&rows, &step.mods) {
                        side_rows.push(generators);
                        sides.extend(their_sides);
                    }
                }
                backend.register_phi(rows)?
            }
            None => Vec::new(),
        };
        seconds.agent_forward += started.elapsed().as_secs_f64();

        let started = Instant::now();
        let outcome = session.step(&step.code, &phis)?;
        seconds.runtime += started.elapsed().as_secs_f64();
        seconds.vision_forward += backend.take_vision_seconds();
        if outcome.error.is_some() {
            step_errors += 1;
        }

        let started = Instant::now();
        for generated in backend.take_generated() {
            let Some((dice, bce, score)) =
                mask_terms(ctx, sample, &input_sessions, step, &phis, &generated)?
            else {
                continue;
            };
            masks.push(score);
            dice_terms.push(dice);
            bce_terms.push(bce);
        }
        seconds.loss += started.elapsed().as_secs_f64();

        if outcome.stopped || index + 1 == sample.program.len() {
            break;
        }
        for item in &outcome.feedback {
            if let FeedbackItem::Encoding { streams } = item {
                for values in streams {
                    let row = backend.eps_row(values).unwrap_or_else(|| {
                        let d = values.len();
                        Tensor::<2>::from_data(TensorData::new(values.clone(), [1, d]), &device)
                    });
                    pending_eps.push(row);
                }
            }
        }
        seq.push_feedback(tok, &outcome.feedback)?;
    }

    let started = Instant::now();
    let hidden = Tensor::cat(hidden_chunks, 1);
    let cross_entropy = program_cross_entropy(net, &seq, hidden, sample)?;
    seconds.loss += started.elapsed().as_secs_f64();

    if let (false, Some(encoding)) = (extras.is_empty(), backend.first_encoding()) {
        let variable = encoding_variable(sample);
        let max_len = net.agent.config().max_seq_len;
        for target in extras {
            let started = Instant::now();
            let code = format!(
                "let extra = generate({variable} {}<mod>);",
                tasks::program::target_note(&target.description)
            );
            seq.push_step(tok, &code)?;
            if seq.len() > max_len {
                break;
            }
            let chunk = &seq.tokens()[processed..];
            let x = net
                .agent
                .input_embeddings(chunk, 1, chunk.len(), &[], None)?;
            let hidden = net.agent.forward_hidden(x, Some(&mut cache))?;
            let positions = chunk_positions(seq.phi_positions(), processed);
            processed = seq.len();
            let rows = net.agent.phi_at(hidden, &positions)?;
            seconds.agent_forward += started.elapsed().as_secs_f64();
            let Some(rows) = rows else { continue };
            if teach_sides {
                side_rows.push(rows.clone().narrow(0, 0, 1));
                sides.push(target_side(target));
            }
            let Some(phi) = backend.register_phi(rows)?.first().copied() else {
                continue;
            };
            let generated = backend.generate_for_loss(&encoding, &phi)?;
            seconds.vision_forward += backend.take_vision_seconds();
            let started = Instant::now();
            match target_terms(ctx, sample, &input_sessions, target, &generated) {
                Ok((dice, bce, mut score)) => {
                    score.extra = true;
                    masks.push(score);
                    dice_terms.push(dice);
                    bce_terms.push(bce);
                }
                // The truth of a derived volume of several sessions is unknown: no term.
                Err(TrainError::Task(tasks::TaskError::Mask(_))) => {}
                Err(e) => return Err(e),
            }
            seconds.loss += started.elapsed().as_secs_f64();
        }
    }

    let started = Instant::now();
    let generated = dice_terms.len();
    let mut total = cross_entropy.clone();
    let mut dice_value = 0.0;
    let mut bce_value = 0.0;
    let mut dice_loss = None;
    if !dice_terms.is_empty() {
        let dice = Tensor::cat(dice_terms, 0).sum();
        dice_value = scalar(dice.clone())?;
        total = total + dice.clone().mul_scalar(ctx.dice_weight);
        dice_loss = Some(dice);
        let bce = Tensor::cat(bce_terms, 0).sum();
        bce_value = scalar(bce.clone())?;
        if ctx.bce_weight > 0.0 {
            total = total + bce.mul_scalar(ctx.bce_weight);
        }
    }
    let mut phi_name = None;
    if !naming_rows.is_empty() {
        if let Some((term, value)) =
            ctx.naming_term(Tensor::cat(naming_rows, 0), &naming_meanings)?
        {
            total = total + term;
            phi_name = Some(value);
        }
    }
    let mut side = None;
    if let (true, Some(gate)) = (!side_rows.is_empty(), &net.vision.side_gate) {
        let term = side_gate_term(gate, Tensor::cat(side_rows, 0), &sides);
        side = Some(scalar(term.clone())?);
        total = total + term.mul_scalar(ctx.side_gate_weight);
    }
    seconds.loss += started.elapsed().as_secs_f64();
    Ok(SampleLoss {
        total,
        side,
        cross_entropy: scalar(cross_entropy)?,
        dice: dice_value,
        bce: bce_value,
        dice_loss,
        generated,
        phi_name,
        step_errors,
        masks,
        seconds,
    })
}

/// The rows of `rows` (one ϕ per marker of `meanings`) whose marker is a generator, with the
/// side each one's target asks for; `None` when no marker is one.
fn generator_rows<'m>(
    rows: &Tensor<2>,
    meanings: impl IntoIterator<Item = &'m ModMeaning>,
) -> Option<(Tensor<2>, Vec<Hemisphere>)> {
    let (index, sides): (Vec<i64>, Vec<Hemisphere>) = meanings
        .into_iter()
        .enumerate()
        .filter_map(|(k, m)| match m {
            ModMeaning::Generate { target } => Some((k as i64, target_side(target))),
            _ => None,
        })
        .unzip();
    if index.is_empty() {
        return None;
    }
    let n = index.len();
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n]), &rows.device());
    Some((rows.clone().select(0, index), sides))
}

/// The offset a side gate should give the side a lateral target is not on, logits
/// (σ(−8) ≈ 3·10⁻⁴: the other side's mask gone).
pub const SIDE_TARGET_LOGITS: f64 = 8.0;

/// Which side `target` asks for: a vocabulary target's hemisphere (`left hippocampus`: left);
/// else a description that starts with a side (`right meningioma`, the one of two lesions in
/// the right hemisphere) that side; else both (`glioma`, `the larger metastasis`).
pub fn target_side(target: &GenerateTarget) -> Hemisphere {
    static VOCABULARY: OnceLock<Option<Vocabulary>> = OnceLock::new();
    let description = target.description.as_str();
    if let Some(t) = VOCABULARY
        .get_or_init(|| Vocabulary::builtin().ok())
        .as_ref()
        .and_then(|v| v.get(description))
    {
        return t.hemisphere;
    }
    if description.starts_with("left ") {
        Hemisphere::Left
    } else if description.starts_with("right ") {
        Hemisphere::Right
    } else {
        Hemisphere::Both
    }
}

/// The side gate's teaching term for the ϕ `rows` (`[N, phi_dim]`) of generators whose targets
/// ask for `sides`. A logistic gate ([`vision::side_gate`]): the mean binary cross-entropy of
/// its exclusion logits, 1 on the side a lateral target is not on, 0 elsewhere (both sides of
/// a bilateral or midline target). A linear gate: the mean squared difference, in units of
/// [`SIDE_TARGET_LOGITS`], between its offsets and `−SIDE_TARGET_LOGITS` / 0 alike. The masks
/// teach the gate too, but their gradient reaches its 64 weights through every target's errors
/// on both sides at once: at the vision rate its weights moved from 0.0101 to 0.0117 in ~250
/// steps (small9e, session 21), far from the ~0.2 that take a side away. Training only, like the
/// ϕ namer; the side words are in the prompt, so ϕ can carry them.
pub fn side_gate_term(gate: &SideGate, rows: Tensor<2>, sides: &[Hemisphere]) -> Tensor<1> {
    let device = rows.device();
    let excluded: Vec<f32> = sides
        .iter()
        .flat_map(|side| match side {
            Hemisphere::Left => [0.0, 1.0],
            Hemisphere::Right => [1.0, 0.0],
            Hemisphere::Both => [0.0, 0.0],
        })
        .collect();
    let excluded = Tensor::<2>::from_data(TensorData::new(excluded, [sides.len(), 2]), &device);
    match gate.exclusion_logits(&rows) {
        Some(z) => (softplus(z.clone(), 1.0) - excluded * z).mean(),
        None => (gate.offsets(&rows) + excluded.mul_scalar(SIDE_TARGET_LOGITS))
            .div_scalar(SIDE_TARGET_LOGITS)
            .powf_scalar(2.0)
            .mean(),
    }
}

/// Mean cross-entropy of the program tokens of `seq` (its loss mask) given the decoder's
/// hidden states `[1, len, d]` over the whole sequence.
fn program_cross_entropy(
    net: &JointNet,
    seq: &AgentSequence,
    hidden: Tensor<3>,
    sample: &TaskSample,
) -> Result<Tensor<1>> {
    let device = net.agent.device();
    let [_, len, d] = hidden.dims();
    let mask = seq.loss_mask();
    let (positions, targets): (Vec<i64>, Vec<u32>) = mask
        .iter()
        .enumerate()
        .filter(|(_, &scored)| scored)
        .map(|(i, _)| (i as i64, seq.tokens()[i + 1]))
        .unzip();
    if positions.is_empty() {
        return Err(TrainError::Backend(format!(
            "sample {} ({}) has no program token to score",
            sample.seed, sample.family
        )));
    }
    let n = positions.len();
    let index = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), &device);
    let rows = hidden.reshape([len, d]).select(0, index);
    let logits = net.agent.decoder.logits(rows);
    Ok(agent::cross_entropy(logits, &targets)?)
}

/// The loss of `sample` in program pretraining: its ground-truth program runs with the
/// oracle ([`tasks::oracle`]) in place of the vision network, so every step's feedback is what
/// a perfect network would give, and the loss is the cross-entropy of the program tokens
/// alone. The `<vol>` slots get zero vectors (the ε° of the vision network is learned in the
/// joint samples). The sequence is built first and the agent reads it in one forward pass:
/// no vision call, no KV cache, so a sample costs a fraction of a joint one and the agent
/// learns the language of programs from many more of them.
pub fn program_loss(ctx: &LossContext<'_>, sample: &TaskSample) -> Result<SampleLoss> {
    let mut seconds = StageSeconds::default();
    let read = read_with_oracle(ctx.net, ctx.tokenizer, sample, &mut seconds)?;
    let started = Instant::now();
    let mut phi_name = None;
    let mut side = None;
    let mut terms: Vec<Tensor<1>> = Vec::new();
    let gate = ctx
        .net
        .vision
        .side_gate
        .as_ref()
        .filter(|_| ctx.side_gate_weight > 0.0);
    if ctx.phi_namer.is_some() || gate.is_some() {
        let (positions, meanings) = marker_meanings(&read.sequence, sample)?;
        if let Some(rows) = ctx.net.agent.phi_at(read.hidden.clone(), &positions)? {
            if let Some(gate) = gate {
                if let Some((generators, sides)) = generator_rows(&rows, meanings.iter().copied()) {
                    let term = side_gate_term(gate, generators, &sides);
                    side = Some(scalar(term.clone())?);
                    terms.push(term.mul_scalar(ctx.side_gate_weight));
                }
            }
            if let Some((term, value)) = ctx.naming_term(rows, &meanings)? {
                terms.push(term);
                phi_name = Some(value);
            }
        }
    }
    let cross_entropy = program_cross_entropy(ctx.net, &read.sequence, read.hidden, sample)?;
    let total = terms
        .into_iter()
        .fold(cross_entropy.clone(), |total, term| total + term);
    seconds.loss = started.elapsed().as_secs_f64();
    Ok(SampleLoss {
        cross_entropy: scalar(cross_entropy)?,
        side,
        total,
        dice: 0.0,
        bce: 0.0,
        dice_loss: None,
        generated: 0,
        phi_name,
        step_errors: read.step_errors,
        masks: Vec::new(),
        seconds,
    })
}

/// The agent's reading of `sample`'s ground-truth program run with the oracle.
struct OracleRead {
    sequence: AgentSequence,
    /// Final hidden states `[1, len, d]`.
    hidden: Tensor<3>,
    step_errors: usize,
}

/// Runs the ground-truth program with the oracle, building the sequence the agent would see
/// (zero ε° in the `<vol>` slots), then reads it in one forward pass.
fn read_with_oracle(
    net: &JointNet,
    tok: &AgentTokenizer,
    sample: &TaskSample,
    seconds: &mut StageSeconds,
) -> Result<OracleRead> {
    let device = net.agent.device();
    let started = Instant::now();
    let infos = volume_infos(sample);
    let mut seq = AgentSequence::initial(tok, &sample.prompt.text, &infos)?;
    let mut session = oracle_session(sample)?;
    let mut step_errors = 0usize;
    let phis = oracle_phis(sample);
    for (index, (step, phis)) in sample.program.iter().zip(&phis).enumerate() {
        seq.push_step(tok, &step.code)?;
        let outcome = session.step(&step.code, phis)?;
        if outcome.error.is_some() {
            step_errors += 1;
        }
        if outcome.stopped || index + 1 == sample.program.len() {
            break;
        }
        seq.push_feedback(tok, &outcome.feedback)?;
    }
    seconds.runtime = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let vol_positions = seq.vol_positions();
    let eps = (!vol_positions.is_empty())
        .then(|| Tensor::<2>::zeros([vol_positions.len(), net.agent.config().d_model], &device));
    let x = net
        .agent
        .input_embeddings(seq.tokens(), 1, seq.len(), &vol_positions, eps)?;
    let hidden = net.agent.forward_hidden(x, None)?;
    seconds.agent_forward = started.elapsed().as_secs_f64();
    Ok(OracleRead {
        sequence: seq,
        hidden,
        step_errors,
    })
}

/// The ϕ the agent emits at each generator marker of `sample`'s ground-truth program (in
/// program order), read as in program pretraining: what tells the vision network which target
/// to segment. The evaluation compares them across targets
/// ([`crate::segmentation_experiment::phi_similarity`]).
pub fn generator_phis(
    net: &JointNet,
    tok: &AgentTokenizer,
    sample: &TaskSample,
) -> Result<Vec<Vec<f32>>> {
    let read = read_with_oracle(net, tok, sample, &mut StageSeconds::default())?;
    let (positions, meanings) = marker_meanings(&read.sequence, sample)?;
    let Some(rows) = net.agent.phi_at(read.hidden, &positions)? else {
        return Ok(Vec::new());
    };
    let width = rows.dims()[1];
    let values = rows
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Backend(format!("reading ϕ: {e:?}")))?;
    Ok(values
        .chunks(width)
        .zip(meanings)
        .filter(|(_, m)| matches!(m, ModMeaning::Generate { .. }))
        .map(|(row, _)| row.to_vec())
        .collect())
}

/// The ϕ positions of `seq` (the ground-truth program of `sample` read with the oracle) and
/// the meaning of each: those of the steps run, all of them unless one stopped early.
fn marker_meanings<'s>(
    seq: &AgentSequence,
    sample: &'s TaskSample,
) -> Result<(Vec<usize>, Vec<&'s ModMeaning>)> {
    let positions = seq.phi_positions();
    let meanings: Vec<&ModMeaning> = sample.mods().take(positions.len()).collect();
    if meanings.len() != positions.len() {
        return Err(TrainError::Backend(format!(
            "sample {}: {} markers in the sequence, {} meanings in the program",
            sample.seed,
            positions.len(),
            meanings.len()
        )));
    }
    Ok((positions, meanings))
}

/// The Dice and binary cross-entropy losses (each `[1]`) of one `generate` call and its score,
/// or `None` when its ϕ is not one of this step's generator markers (a program that generates
/// with an encoder's ϕ has no target).
fn mask_terms(
    ctx: &LossContext<'_>,
    sample: &TaskSample,
    input_sessions: &[(Arc<Image>, usize)],
    step: &tasks::program::ProgramStep,
    phis: &[Phi],
    generated: &Generated,
) -> Result<Option<(Tensor<1>, Tensor<1>, MaskScore)>> {
    let Some(marker) = phis.iter().position(|p| *p == generated.phi) else {
        return Ok(None);
    };
    let Some(ModMeaning::Generate { target }) = step.mods.get(marker) else {
        return Ok(None);
    };
    target_terms(ctx, sample, input_sessions, target, generated).map(Some)
}

/// The Dice and binary cross-entropy losses (each `[1]`) of `generated` against `target`'s
/// true mask on each of its streams, and its score.
fn target_terms(
    ctx: &LossContext<'_>,
    sample: &TaskSample,
    input_sessions: &[(Arc<Image>, usize)],
    target: &GenerateTarget,
    generated: &Generated,
) -> Result<(Tensor<1>, Tensor<1>, MaskScore)> {
    let mut carried = Vec::with_capacity(generated.streams.len());
    for stream in &generated.streams {
        let mask =
            tasks::oracle::stream_truth(&sample.truth, input_sessions, &target.mask, stream)?;
        carried.push(
            ctx.preprocessing
                .carry_mask(&mask.to_image(), &generated.grid)?,
        );
    }
    let refs: Vec<&Image> = carried.iter().collect();
    let truth = images_to_tensor(&refs, &generated.probabilities.device())?;
    let dice = soft_dice_loss(generated.probabilities.clone(), truth.clone()).reshape([1]);
    let positive_weight_max = if target.mask.is_lesion() {
        ctx.lesion_positive_weight_max
    } else {
        1.0
    };
    let bce = crate::loss::weighted_bce_with_logits_loss(
        generated.logits.clone(),
        truth.clone(),
        positive_weight_max,
    )
    .reshape([1]);
    let score = MaskScore::of(
        &target.description,
        &vision::tensor::tensor_values(generated.probabilities.clone())?,
        &vision::tensor::tensor_values(truth)?,
        scalar(dice.clone())?,
    );
    Ok((dice, bce, score))
}

/// The `positions` of a sequence from `processed` on, counted from there (the chunk the next
/// forward pass reads).
fn chunk_positions(positions: Vec<usize>, processed: usize) -> Vec<usize> {
    positions
        .into_iter()
        .filter(|&p| p >= processed)
        .map(|p| p - processed)
        .collect()
}

/// The variable the first `encode` of `sample`'s program is kept in (`e` in every family's
/// program, the fallback too).
fn encoding_variable(sample: &TaskSample) -> String {
    sample
        .program
        .iter()
        .flat_map(|step| step.code.split(';'))
        .find_map(|statement| {
            let (left, right) = statement.split_once('=')?;
            right.trim_start().starts_with("encode(").then_some(())?;
            let name = left.trim().strip_prefix("let ")?.trim();
            (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .then(|| name.to_string())
        })
        .unwrap_or_else(|| "e".to_string())
}

/// The single value of a `[1]` tensor.
pub fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = vision::tensor::tensor_values(t)?;
    v.first()
        .map(|&x| f64::from(x))
        .ok_or_else(|| TrainError::Backend("empty loss tensor".into()))
}

#[cfg(test)]
mod tests {
    use super::MaskScore;

    #[test]
    fn a_mask_score_thresholds_at_one_half_and_counts_overlap() {
        let s = MaskScore::of(
            "x",
            &[0.9, 0.6, 0.2, 0.0, 0.5],
            &[1.0, 0.0, 1.0, 0.0, 1.0],
            0.3,
        );
        assert_eq!((s.truth_voxels, s.predicted_voxels), (3, 3));
        assert!((s.dice - 2.0 * 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(s.soft_dice_loss, 0.3);
        // Nothing to find and nothing found is a perfect answer.
        assert_eq!(MaskScore::of("x", &[0.1, 0.4], &[0.0, 0.0], 0.9).dice, 1.0);
        assert_eq!(MaskScore::of("x", &[0.6, 0.4], &[0.0, 0.0], 0.9).dice, 0.0);
    }
}
