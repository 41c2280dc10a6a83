//! Block coverage of a hook's own code, for the fuzzer.
//!
//! [`instrument`] rewrites a hook component so that the fuzzer can see which basic blocks of the
//! hook a message reached. Each top-level core module gets:
//!
//! - a second memory (`airlock-coverage-memory`), so the hook's own memory, and so its
//!   behaviour, is untouched: a seen-map of one byte per block (and per edge, below), and room
//!   for the list of those reached that the reader returns;
//! - a probe at every block start (function entry, the arms of an `if`, a loop's head, the
//!   fall-through of a `br_if`, the join after an `end`): one store of 1 to the block's byte,
//!   with no branch (a test-and-append probe, adding a branch and a block to every block, made
//!   CPython hooks run about 3 times slower; BENCHMARKS.md, "Fuzzing with coverage");
//! - in an interpreter's dispatch function (a `br_table` of at least 128 targets whose index an
//!   `i32.load8_u`/`load16_u` fetches, from at least 16 places, as CPython's eval loop does), a
//!   call before each such fetch that records an *edge* of the interpreted program: the pair
//!   (previous fetch address, this fetch address), hashed AFL-style into a map of 65536 edges
//!   kept after the blocks' map and numbered after the module's blocks. A Python `if` taking a
//!   new branch runs the interpreter's blocks it ran before, but fetches from new addresses, so
//!   it shows as new edges. Only addresses inside the component's data segments count (the
//!   code objects of a snapshotted runtime, componentize-py's, are there; a message's own bytes,
//!   on the heap, are not, and would make every message look new);
//! - a function `airlock-coverage: func() -> list<u32>` that scans the map 64 bytes at a time,
//!   lists and clears the bytes set (and forgets the previous fetch), and returns the
//!   list, exported from the component as
//!   `airlock-coverage-mN` for the module's N-th instance. The host calls it after each message
//!   (`HookOptions::coverage`).
//!
//! Block and edge numbers are unique across the component's modules. The rewrite only appends (a memory,
//! a global, a type, a function, exports), so no index of the original changes. The
//! instrumented copy is only for fuzzing: production runs the hook as built.
//!
//! Components nested inside the hook (a JavaScript runtime's, say) are not instrumented:
//! [`instrument`] refuses them, naming why, and the fuzzer falls back to verdict feedback.
//!
//! While rewriting, [`instrument`] also gathers [`Hints`] for the mutator: the constants the
//! hook's code compares against (as text when they are printable, as lengths when small), the
//! string literals it passes around (an address in its data followed by a length), and the
//! printable strings of its data segments (when there are few enough to be the hook's own).

use std::collections::BTreeSet;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    Alias, CanonicalFunctionSection, CanonicalOption, ComponentAliasSection, ComponentExportKind,
    ComponentExportSection, ComponentTypeSection, ComponentValType, ExportKind, Function,
    Instruction, MemArg, PrimitiveValType, SectionId, ValType,
};
use wasmparser::{Operator, Parser, Payload};

/// The name of the coverage function a module exports, and of its memory.
const CORE_FUNC: &str = "airlock-coverage";
const CORE_MEMORY: &str = "airlock-coverage-memory";
/// The prefix of the component exports the host looks for (`airlock-coverage-m0`, …).
pub const EXPORT_PREFIX: &str = "airlock-coverage-m";

/// Data strings are taken as hints only when a hook has at most this many (a language runtime's
/// thousands would drown the hook's own).
const MAX_DATA_STRINGS: usize = 4096;

/// What the mutator can learn from a hook's code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// Text the hook's code compares against or passes around as a literal: keys, prefixes,
    /// values.
    pub tokens: Vec<String>,
    /// The printable runs of the hook's data, when there are few enough to be its own (a
    /// language runtime's are not kept); several literals may run together in one.
    pub data: Vec<String>,
    /// The tokens the hook's code compares a few bytes against at once (`starts_with("raw:")`
    /// compiled to one comparison): fewer than the literals, and each a condition.
    pub compared: Vec<String>,
    /// Small numbers the hook compares against: lengths, counts.
    pub lengths: Vec<usize>,
    /// Against a reference, the text only the hook holds ([`distinct_strings`](super::distinct::distinct_strings)): what it checks
    /// that the reference does not, tried more often than the rest.
    pub distinct: Vec<String>,
}

/// The edges of an interpreted program a module with an interpreter's dispatch records (see the
/// module docs): the size of its edge map.
pub const EDGES: u32 = 1 << 16;

/// A `br_table` with at least this many targets may be an interpreter's dispatch…
const MIN_DISPATCH_TARGETS: u32 = 128;
/// …when at least this many byte loads fetch its index.
const MIN_FETCHES: usize = 16;

/// An instrumented hook.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The rewritten component.
    pub bytes: Vec<u8>,
    /// Blocks probed, over all modules.
    pub blocks: u32,
    /// The numbers of the interpreted program's edges (one range of [`EDGES`] per module with an
    /// interpreter's dispatch; none for a compiled hook).
    pub edges: Vec<std::ops::Range<u32>>,
    /// Core modules instrumented.
    pub modules: usize,
    /// Hints for the mutator.
    pub hints: Hints,
}

/// Instruments every top-level core module of a hook component (see the module docs). Refuses,
/// saying why, a core module, a component with nested components, or one it cannot parse.
pub fn instrument(component: &[u8]) -> Result<Instrumented, String> {
    if !wasmparser::Parser::is_component(component) {
        return Err("not a component".into());
    }
    let mut out: Vec<u8> = component[..8].to_vec();
    let mut depth = 0usize;
    // The component's core module index space: each module's first block, when instrumented.
    let mut instrumented: Vec<Option<u32>> = Vec::new();
    let mut instances: Vec<(u32, u32)> = Vec::new(); // (core instance, module)
    let mut core_instances = 0u32;
    let mut blocks = 0u32;
    let mut numbers = 0u32;
    let mut edges = Vec::new();
    let data = data_range(component);
    let mut harvest = Harvest::default();
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    let mut types = None;
    let parse = |e: wasmparser::BinaryReaderError| format!("cannot parse the hook: {e}");
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.map_err(parse)?;
        // Function bodies are not validated here (wasmtime does): only the index spaces are
        // wanted, from the last (the top-level) end.
        if let wasmparser::ValidPayload::End(t) = validator.payload(&payload).map_err(parse)? {
            types = Some(t);
        }
        match &payload {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                depth += 1;
                if depth > 1 {
                    continue;
                }
                let original = &component[unchecked_range.clone()];
                match instrument_module(original, numbers, data, &mut harvest)? {
                    Some((module, count, edge_count)) => {
                        raw_section(&mut out, 1, &module);
                        instrumented.push(Some(numbers));
                        blocks += count;
                        if edge_count > 0 {
                            edges.push(numbers + count..numbers + count + edge_count);
                        }
                        numbers += count + edge_count;
                    }
                    None => {
                        raw_section(&mut out, 1, original);
                        instrumented.push(None);
                    }
                }
            }
            Payload::ComponentSection {
                unchecked_range, ..
            } => {
                depth += 1;
                if depth == 1 {
                    let nested = &component[unchecked_range.clone()];
                    if has_code(nested) {
                        return Err("it nests components with code of their own (as a \
                                    JavaScript runtime does), which are not instrumented"
                            .into());
                    }
                    raw_section(&mut out, 4, nested);
                }
            }
            Payload::End(_) => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            _ if depth > 0 => {}
            Payload::InstanceSection(section) => {
                for instance in section.clone() {
                    if let wasmparser::Instance::Instantiate { module_index, .. } =
                        instance.map_err(parse)?
                    {
                        instances.push((core_instances, module_index));
                    }
                    core_instances += 1;
                }
                copy_section(&mut out, &payload, component);
            }
            Payload::ComponentAliasSection(section) => {
                for alias in section.clone() {
                    match alias.map_err(parse)? {
                        wasmparser::ComponentAlias::InstanceExport {
                            kind: wasmparser::ComponentExternalKind::Module,
                            ..
                        }
                        | wasmparser::ComponentAlias::Outer {
                            kind: wasmparser::ComponentOuterAliasKind::CoreModule,
                            ..
                        } => instrumented.push(None),
                        _ => {}
                    }
                }
                copy_section(&mut out, &payload, component);
            }
            Payload::ComponentImportSection(section) => {
                for import in section.clone() {
                    if let wasmparser::ComponentTypeRef::Module(_) = import.map_err(parse)?.ty {
                        instrumented.push(None);
                    }
                }
                copy_section(&mut out, &payload, component);
            }
            _ => copy_section(&mut out, &payload, component),
        }
    }
    let types = types.ok_or("the hook component ends early")?;
    let types = types.as_ref();
    let probed: Vec<u32> = instances
        .iter()
        .filter(|(_, module)| {
            instrumented
                .get(*module as usize)
                .copied()
                .flatten()
                .is_some()
        })
        .map(|(instance, _)| *instance)
        .collect();
    if probed.is_empty() {
        return Err("it has no core code to instrument".into());
    }

    // Read each instance's list through a lifted `func() -> list<u32>` in its coverage memory.
    let core_funcs = types.function_count();
    let core_memories = types.memory_count();
    let component_types = types.component_type_count();
    let component_funcs = types.component_function_count();
    let mut aliases = ComponentAliasSection::new();
    for &instance in &probed {
        aliases.alias(Alias::CoreInstanceExport {
            instance,
            kind: ExportKind::Func,
            name: CORE_FUNC,
        });
        aliases.alias(Alias::CoreInstanceExport {
            instance,
            kind: ExportKind::Memory,
            name: CORE_MEMORY,
        });
    }
    let mut component_types_section = ComponentTypeSection::new();
    component_types_section
        .defined_type()
        .list(ComponentValType::Primitive(PrimitiveValType::U32));
    component_types_section
        .function()
        .params([] as [(&str, ComponentValType); 0])
        .result(Some(ComponentValType::Type(component_types)));
    let mut canon = CanonicalFunctionSection::new();
    let mut exports = ComponentExportSection::new();
    for (n, _) in probed.iter().enumerate() {
        let n = n as u32;
        canon.lift(
            core_funcs + n,
            component_types + 1,
            [
                CanonicalOption::UTF8,
                CanonicalOption::Memory(core_memories + n),
            ],
        );
        exports.export(
            format!("{EXPORT_PREFIX}{n}"),
            ComponentExportKind::Func,
            component_funcs + n,
            None,
        );
    }
    use wasm_encoder::Encode as _;
    for (id, section) in [
        (6u8, encoded(|s| aliases.encode(s))),
        (7u8, encoded(|s| component_types_section.encode(s))),
        (8u8, encoded(|s| canon.encode(s))),
        (11u8, encoded(|s| exports.encode(s))),
    ] {
        // Sections' encodings already start with their size.
        out.push(id);
        out.extend_from_slice(&section);
    }
    Ok(Instrumented {
        bytes: out,
        blocks,
        edges,
        modules: probed.len(),
        hints: harvest.finish(),
    })
}

fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = Vec::new();
    f(&mut bytes);
    bytes
}

/// The addresses the active data segments of the component's top-level modules span (where a
/// snapshotted runtime's code objects are), if any.
fn data_range(component: &[u8]) -> Option<(u32, u32)> {
    let mut depth = 0usize;
    let mut range: Option<(u32, u32)> = None;
    for payload in Parser::new(0).parse_all(component) {
        match payload.ok()? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => match depth {
                0 => break,
                _ => depth -= 1,
            },
            Payload::DataSection(section) if depth == 1 => {
                for data in section.into_iter().flatten() {
                    if let wasmparser::DataKind::Active { offset_expr, .. } = data.kind
                        && let Ok(Operator::I32Const { value }) =
                            offset_expr.get_operators_reader().read()
                    {
                        let start = value as u32;
                        let end = start.saturating_add(data.data.len() as u32);
                        range = Some(match range {
                            Some((lo, hi)) => (lo.min(start), hi.max(end)),
                            None => (start, end),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    range
}

fn byte_load(op: &Operator) -> bool {
    matches!(op, Operator::I32Load8U { .. } | Operator::I32Load16U { .. })
}

/// The operators (by position in the body) of a function that fetch an interpreter's next
/// opcode: byte loads whose value is a big `br_table`'s index, directly or through a local
/// (possibly masked or offset by a constant). Empty unless there are at least [`MIN_FETCHES`].
fn fetches(ops: &[Operator]) -> Vec<usize> {
    let mut locals = Vec::new();
    let mut sites = Vec::new();
    for (at, op) in ops.iter().enumerate() {
        let Operator::BrTable { targets } = op else {
            continue;
        };
        if targets.len() < MIN_DISPATCH_TARGETS {
            continue;
        }
        let mut from = at.checked_sub(1);
        if let Some(before) = from
            && matches!(
                ops[before],
                Operator::I32And | Operator::I32Sub | Operator::I32Add
            )
            && before >= 2
            && matches!(ops[before - 1], Operator::I32Const { .. })
        {
            from = Some(before - 2);
        }
        match from.map(|from| (from, &ops[from])) {
            Some((_, Operator::LocalGet { local_index })) => locals.push(*local_index),
            Some((from, op)) if byte_load(op) => sites.push(from),
            _ => {}
        }
    }
    if !locals.is_empty() {
        for (at, pair) in ops.windows(2).enumerate() {
            if byte_load(&pair[0])
                && let Operator::LocalSet { local_index } | Operator::LocalTee { local_index } =
                    pair[1]
                && locals.contains(&local_index)
            {
                sites.push(at);
            }
        }
    }
    sites.sort_unstable();
    sites.dedup();
    if sites.len() < MIN_FETCHES {
        sites.clear();
    }
    sites
}

/// Whether a nested component holds any function body.
fn has_code(bytes: &[u8]) -> bool {
    Parser::new(0)
        .parse_all(bytes)
        .any(|p| matches!(p, Ok(Payload::CodeSectionStart { count, .. }) if count > 0))
}

fn raw_section(out: &mut Vec<u8>, id: u8, data: &[u8]) {
    out.push(id);
    leb128(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn copy_section(out: &mut Vec<u8>, payload: &Payload, bytes: &[u8]) {
    if let Some((id, range)) = payload.as_section() {
        raw_section(out, id, &bytes[range]);
    }
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Where a probe goes: after this operator (the entry probe is separate).
fn probe_after(op: &Operator) -> bool {
    matches!(
        op,
        Operator::If { .. }
            | Operator::Else
            | Operator::Loop { .. }
            | Operator::BrIf { .. }
            | Operator::End
    )
}

/// What a module holds, counted before rewriting it.
#[derive(Debug, Default)]
struct Counts {
    types: u32,
    funcs: u32,
    memories: u32,
    globals: u32,
    bodies: u32,
    blocks: u32,
    has_type_section: bool,
    /// The opcode fetches of each body that has them ([`fetches`]), by body.
    fetches: std::collections::HashMap<u32, Vec<usize>>,
}

/// Constants and strings found in the hook's modules.
#[derive(Debug, Default)]
struct Harvest {
    tokens: BTreeSet<String>,
    compared: BTreeSet<String>,
    lengths: BTreeSet<usize>,
    data: BTreeSet<String>,
}

impl Harvest {
    /// A constant the code compares against.
    fn constant(&mut self, value: i64, width: usize) {
        if (1..=4096).contains(&value) {
            self.lengths.insert(value as usize);
        }
        let bytes = value.to_le_bytes();
        let bytes = &bytes[..width];
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
        if printable(&bytes[..end]) {
            self.compared
                .insert(String::from_utf8_lossy(&bytes[..end]).into_owned());
        }
        self.text(&bytes[..end]);
    }

    /// Printable text of 2 bytes or more, as a token.
    fn text(&mut self, bytes: &[u8]) {
        if printable(bytes) {
            self.tokens
                .insert(String::from_utf8_lossy(bytes).into_owned());
        }
    }

    /// The printable runs of a data segment (Rust keeps string literals end to end, so a run may
    /// hold several).
    fn data(&mut self, bytes: &[u8]) {
        for run in bytes.split(|b| !(0x20..0x7f).contains(b)) {
            if (2..=48).contains(&run.len()) && self.data.len() <= MAX_DATA_STRINGS {
                self.data.insert(String::from_utf8_lossy(run).into_owned());
            }
        }
    }

    fn finish(self) -> Hints {
        let data = match self.data.len() <= MAX_DATA_STRINGS {
            true => self.data.into_iter().collect(),
            false => Vec::new(),
        };
        Hints {
            tokens: self.tokens.into_iter().collect(),
            compared: self.compared.into_iter().collect(),
            data,
            lengths: self.lengths.into_iter().collect(),
            distinct: Vec::new(),
        }
    }
}

/// Printable ASCII, 2 bytes or more.
fn printable(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes.iter().all(|b| (0x20..0x7f).contains(b))
}

fn count(module: &[u8], harvest: &mut Harvest) -> Result<Counts, String> {
    let parse = |e: wasmparser::BinaryReaderError| format!("cannot parse a hook module: {e}");
    let mut counts = Counts::default();
    // An address and a length a few operators apart (how Rust and C pass a string literal), and
    // the active data segments they may point into.
    let mut literals: std::collections::HashSet<(u32, u32)> = Default::default();
    let mut segments: Vec<(u32, &[u8])> = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(parse)? {
            Payload::TypeSection(section) => {
                counts.has_type_section = true;
                for group in section {
                    counts.types += group.map_err(parse)?.types().len() as u32;
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    match import.map_err(parse)?.ty {
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_) => {
                            counts.funcs += 1
                        }
                        wasmparser::TypeRef::Memory(_) => counts.memories += 1,
                        wasmparser::TypeRef::Global(_) => counts.globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(section) => counts.funcs += section.count(),
            Payload::MemorySection(section) => counts.memories += section.count(),
            Payload::GlobalSection(section) => counts.globals += section.count(),
            Payload::DataSection(section) => {
                for data in section {
                    let data = data.map_err(parse)?;
                    harvest.data(data.data);
                    if let wasmparser::DataKind::Active { offset_expr, .. } = data.kind
                        && let Ok(Operator::I32Const { value }) =
                            offset_expr.get_operators_reader().read()
                    {
                        segments.push((value as u32, data.data));
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                counts.bodies += 1;
                counts.blocks += 1;
                let mut reader = body.get_operators_reader().map_err(parse)?;
                let mut last: Option<(i64, usize)> = None;
                // The `i32.const`s of the last few operators.
                let mut recent: [Option<u32>; 4] = [None; 4];
                let mut ops = Vec::new();
                let mut dispatch = false;
                while !reader.eof() {
                    let op = reader.read().map_err(parse)?;
                    dispatch |= matches!(&op, Operator::BrTable { targets }
                        if targets.len() >= MIN_DISPATCH_TARGETS);
                    ops.push(op.clone());
                    if probe_after(&op) {
                        counts.blocks += 1;
                    }
                    if let Some((value, width)) = last
                        && is_comparison(&op)
                    {
                        harvest.constant(value, width);
                    }
                    if let Operator::I32Const { value } = op {
                        let value = value as u32;
                        for &other in recent.iter().flatten() {
                            // Either may be the address, either the length.
                            for (address, len) in [(other, value), (value, other)] {
                                if (2..=64).contains(&len) && address > 64 {
                                    literals.insert((address, len));
                                }
                            }
                        }
                    }
                    recent.rotate_right(1);
                    recent[0] = match op {
                        Operator::I32Const { value } => Some(value as u32),
                        _ => None,
                    };
                    last = match op {
                        Operator::I32Const { value } => Some((i64::from(value as u32), 4)),
                        Operator::I64Const { value } => Some((value, 8)),
                        _ => None,
                    };
                }
                // The function's final `end` gets no probe.
                counts.blocks -= 1;
                if dispatch {
                    let sites = fetches(&ops);
                    if !sites.is_empty() {
                        counts.fetches.insert(counts.bodies - 1, sites);
                    }
                }
            }
            _ => {}
        }
    }
    segments.sort_unstable_by_key(|&(start, _)| start);
    for (address, len) in literals {
        let at = segments.partition_point(|&(start, _)| start <= address);
        let found = at.checked_sub(1).and_then(|at| {
            let (start, bytes) = segments[at];
            let offset = (address - start) as usize;
            bytes.get(offset..offset + len as usize)
        });
        if let Some(text) = found {
            harvest.text(text);
        }
    }
    Ok(counts)
}

fn is_comparison(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        I32Eq
            | I32Ne
            | I32LtU
            | I32LtS
            | I32GtU
            | I32GtS
            | I32LeU
            | I32LeS
            | I32GeU
            | I32GeS
            | I64Eq
            | I64Ne
            | I64LtU
            | I64LtS
            | I64GtU
            | I64GtS
            | I64LeU
            | I64LeS
            | I64GeU
            | I64GeS
            | BrTable { .. }
    )
}

/// Layout of the coverage memory: the return area, the seen-map from `SEEN` (aligned, and
/// padded with zeros to a multiple of [`CHUNK`] bytes, the reader's step), then the list.
const SEEN: u32 = 64;
/// The bytes of the seen-map the reader tests at once (four `v128`).
const CHUNK: u32 = 64;

fn list_offset(numbers: u32) -> u32 {
    SEEN + numbers.next_multiple_of(CHUNK)
}

/// The rewritten module, its block count and its edge count (0 or [`EDGES`]), or `None` when it
/// has no code. `data` is where edges are recorded from ([`data_range`]).
fn instrument_module(
    module: &[u8],
    base: u32,
    data: Option<(u32, u32)>,
    harvest: &mut Harvest,
) -> Result<Option<(Vec<u8>, u32, u32)>, String> {
    let mut counts = count(module, harvest)?;
    if counts.bodies == 0 || !counts.has_type_section {
        return Ok(None);
    }
    if data.is_none() {
        counts.fetches.clear();
    }
    let edges = match counts.fetches.is_empty() {
        true => 0,
        false => EDGES,
    };
    let numbers = counts.blocks + edges;
    let list = list_offset(numbers);
    let bytes = u64::from(list) + 4 * u64::from(numbers);
    let pages = bytes.div_ceil(65536).max(1);
    let mut probe = Probe {
        base,
        next: 0,
        blocks: counts.blocks,
        edges,
        data: data.unwrap_or((0, 0)),
        fetches: std::mem::take(&mut counts.fetches),
        body: 0,
        list,
        memory: counts.memories,
        global: counts.globals,
        func: counts.funcs,
        ty: counts.types,
        pages,
        memory_done: false,
        global_done: false,
        export_done: false,
    };
    let mut out = wasm_encoder::Module::new();
    probe
        .parse_core_module(&mut out, Parser::new(0), module)
        .map_err(|e| format!("cannot instrument a hook module: {e}"))?;
    if probe.next != counts.blocks {
        return Err(format!(
            "instrumenting a hook module: {} probes placed, {} counted",
            probe.next, counts.blocks
        ));
    }
    Ok(Some((out.finish(), counts.blocks, edges)))
}

/// The rewriter of one module.
struct Probe {
    /// The number of this module's first block.
    base: u32,
    /// The next block's local number.
    next: u32,
    /// The module's blocks (its edges are numbered after them).
    blocks: u32,
    /// The module's edges: 0 or [`EDGES`].
    edges: u32,
    /// The addresses fetches are recorded from.
    data: (u32, u32),
    /// The opcode fetches to record, by body ([`fetches`]).
    fetches: std::collections::HashMap<u32, Vec<usize>>,
    /// The body being rewritten.
    body: u32,
    /// Where the list starts in the coverage memory.
    list: u32,
    /// Indices of what is added: the memory, the global of the previous fetch's address, the
    /// read function and its type (the edge function and its type are the next).
    memory: u32,
    global: u32,
    func: u32,
    ty: u32,
    pages: u64,
    memory_done: bool,
    global_done: bool,
    export_done: bool,
}

impl Probe {
    fn mem(&self, offset: u32, align: u32) -> MemArg {
        MemArg {
            offset: u64::from(offset),
            align,
            memory_index: self.memory,
        }
    }

    fn emit_probe(&mut self, f: &mut Function) {
        let local = self.next;
        self.next += 1;
        f.instruction(&Instruction::I32Const(0))
            .instruction(&Instruction::I32Const(1))
            .instruction(&Instruction::I32Store8(self.mem(SEEN + local, 0)));
    }

    /// `airlock-coverage`: scans the seen-map (blocks, then edges) a [`CHUNK`] at a time (four
    /// `v128` loads or-ed together); in a chunk with a byte set, tests it a word (8 bytes) at a
    /// time, clears each word with a byte set and appends the numbers of its set bytes (`base` +
    /// position; a set byte is 1, so each is one bit, found with `ctz`) to the list. Writes
    /// (list, length) to the return area at 0, forgets the previous fetch and returns 0.
    fn read_function(&self) -> Function {
        use Instruction as I;
        use wasm_encoder::BlockType::Empty;
        let (at, word_at, count, word) = (0, 1, 2, 3);
        let end = (self.blocks + self.edges).next_multiple_of(CHUNK);
        let seen = |offset: u32, align: u32| self.mem(SEEN + offset, align);
        let mut f = Function::new([(3, ValType::I32), (1, ValType::I64)]);
        f.instruction(&I::Block(Empty))
            .instruction(&I::Loop(Empty))
            .instruction(&I::LocalGet(at))
            .instruction(&I::I32Const(end as i32))
            .instruction(&I::I32GeU)
            .instruction(&I::BrIf(1))
            .instruction(&I::LocalGet(at))
            .instruction(&I::V128Load(seen(0, 4)));
        for offset in [16, 32, 48] {
            f.instruction(&I::LocalGet(at))
                .instruction(&I::V128Load(seen(offset, 4)))
                .instruction(&I::V128Or);
        }
        f.instruction(&I::V128AnyTrue)
            .instruction(&I::If(Empty))
            // The chunk's words.
            .instruction(&I::LocalGet(at))
            .instruction(&I::LocalSet(word_at))
            .instruction(&I::Loop(Empty))
            .instruction(&I::LocalGet(word_at))
            .instruction(&I::I64Load(seen(0, 3)))
            .instruction(&I::LocalTee(word))
            .instruction(&I::I64Eqz)
            .instruction(&I::I32Eqz)
            .instruction(&I::If(Empty))
            .instruction(&I::LocalGet(word_at))
            .instruction(&I::I64Const(0))
            .instruction(&I::I64Store(seen(0, 3)))
            // The word's set bytes, lowest first.
            .instruction(&I::Loop(Empty))
            .instruction(&I::LocalGet(count))
            .instruction(&I::I32Const(4))
            .instruction(&I::I32Mul)
            .instruction(&I::LocalGet(word_at))
            .instruction(&I::LocalGet(word))
            .instruction(&I::I64Ctz)
            .instruction(&I::I64Const(3))
            .instruction(&I::I64ShrU)
            .instruction(&I::I32WrapI64)
            .instruction(&I::I32Add)
            .instruction(&I::I32Const(self.base as i32))
            .instruction(&I::I32Add)
            .instruction(&I::I32Store(self.mem(self.list, 2)))
            .instruction(&I::LocalGet(count))
            .instruction(&I::I32Const(1))
            .instruction(&I::I32Add)
            .instruction(&I::LocalSet(count))
            .instruction(&I::LocalGet(word))
            .instruction(&I::LocalGet(word))
            .instruction(&I::I64Const(1))
            .instruction(&I::I64Sub)
            .instruction(&I::I64And)
            .instruction(&I::LocalTee(word))
            .instruction(&I::I64Eqz)
            .instruction(&I::I32Eqz)
            .instruction(&I::BrIf(0))
            .instruction(&I::End)
            .instruction(&I::End)
            .instruction(&I::LocalGet(word_at))
            .instruction(&I::I32Const(8))
            .instruction(&I::I32Add)
            .instruction(&I::LocalTee(word_at))
            .instruction(&I::LocalGet(at))
            .instruction(&I::I32Const(CHUNK as i32))
            .instruction(&I::I32Add)
            .instruction(&I::I32LtU)
            .instruction(&I::BrIf(0))
            .instruction(&I::End)
            .instruction(&I::End)
            .instruction(&I::LocalGet(at))
            .instruction(&I::I32Const(CHUNK as i32))
            .instruction(&I::I32Add)
            .instruction(&I::LocalSet(at))
            .instruction(&I::Br(0))
            .instruction(&I::End)
            .instruction(&I::End)
            .instruction(&I::I32Const(0))
            .instruction(&I::I32Const(self.list as i32))
            .instruction(&I::I32Store(self.mem(0, 2)))
            .instruction(&I::I32Const(0))
            .instruction(&I::LocalGet(count))
            .instruction(&I::I32Store(self.mem(4, 2)))
            .instruction(&I::I32Const(0))
            .instruction(&I::GlobalSet(self.global))
            .instruction(&I::I32Const(0))
            .instruction(&I::End);
        f
    }

    /// `airlock-coverage-edge: (address) -> address`, called before an opcode fetch with its
    /// address: when the address is in the data and not the previous fetch's (an instruction
    /// fetched again, as a specializing interpreter does after rewriting it, is no edge of the
    /// program), records the edge from the previous fetch (AFL's `map[cur ^ prev >> 1]`, of
    /// the addresses' hashes) as number `base + blocks + index` in the map after the blocks'.
    fn edge_function(&self) -> Function {
        let (address, index) = (0, 1);
        let prev = self.global;
        let (lo, hi) = self.data;
        let seen = self.mem(SEEN + self.blocks, 0);
        // The top 16 bits of a multiplicative hash: 0..EDGES.
        let hash = |f: &mut Function| {
            f.instruction(&Instruction::I32Const(0x9E37_79B1_u32 as i32))
                .instruction(&Instruction::I32Mul)
                .instruction(&Instruction::I32Const(16))
                .instruction(&Instruction::I32ShrU);
        };
        let mut f = Function::new([(1, ValType::I32)]);
        f.instruction(&Instruction::LocalGet(address))
            .instruction(&Instruction::I32Const(lo as i32))
            .instruction(&Instruction::I32Sub)
            .instruction(&Instruction::I32Const(hi.wrapping_sub(lo) as i32))
            .instruction(&Instruction::I32LtU)
            .instruction(&Instruction::LocalGet(address))
            .instruction(&Instruction::GlobalGet(prev))
            .instruction(&Instruction::I32Ne)
            .instruction(&Instruction::I32And)
            .instruction(&Instruction::If(wasm_encoder::BlockType::Empty))
            .instruction(&Instruction::LocalGet(address));
        hash(&mut f);
        f.instruction(&Instruction::GlobalGet(prev));
        hash(&mut f);
        f.instruction(&Instruction::I32Const(1))
            .instruction(&Instruction::I32ShrU)
            .instruction(&Instruction::I32Xor)
            .instruction(&Instruction::LocalSet(index))
            .instruction(&Instruction::LocalGet(address))
            .instruction(&Instruction::GlobalSet(prev))
            .instruction(&Instruction::LocalGet(index))
            .instruction(&Instruction::I32Const(1))
            .instruction(&Instruction::I32Store8(seen))
            .instruction(&Instruction::End)
            .instruction(&Instruction::LocalGet(address))
            .instruction(&Instruction::End);
        f
    }

    fn add_memory(&mut self, memories: &mut wasm_encoder::MemorySection) {
        memories.memory(wasm_encoder::MemoryType {
            minimum: self.pages,
            maximum: Some(self.pages),
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        self.memory_done = true;
    }

    fn add_global(&mut self, globals: &mut wasm_encoder::GlobalSection) {
        // The previous fetch's address.
        globals.global(
            wasm_encoder::GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &wasm_encoder::ConstExpr::i32_const(0),
        );
        self.global_done = true;
    }

    fn add_exports(&mut self, exports: &mut wasm_encoder::ExportSection) {
        exports.export(CORE_FUNC, ExportKind::Func, self.func);
        exports.export(CORE_MEMORY, ExportKind::Memory, self.memory);
        self.export_done = true;
    }
}

/// The position of a section in a module's required order.
fn rank(id: Option<SectionId>) -> u8 {
    match id {
        Some(SectionId::Type) => 1,
        Some(SectionId::Import) => 2,
        Some(SectionId::Function) => 3,
        Some(SectionId::Table) => 4,
        Some(SectionId::Memory) => 5,
        Some(SectionId::Tag) => 6,
        Some(SectionId::Global) => 7,
        Some(SectionId::Export) => 8,
        Some(SectionId::Start) => 9,
        Some(SectionId::Element) => 10,
        Some(SectionId::DataCount) => 11,
        Some(SectionId::Code) => 12,
        Some(SectionId::Data) => 13,
        _ => 14,
    }
}

type ReencodeResult<T> = Result<T, reencode::Error>;

impl Reencode for Probe {
    type Error = std::convert::Infallible;

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> ReencodeResult<()> {
        let next = rank(before);
        if !self.memory_done && next > rank(Some(SectionId::Memory)) {
            let mut memories = wasm_encoder::MemorySection::new();
            self.add_memory(&mut memories);
            module.section(&memories);
        }
        if !self.global_done && next > rank(Some(SectionId::Global)) {
            let mut globals = wasm_encoder::GlobalSection::new();
            self.add_global(&mut globals);
            module.section(&globals);
        }
        if !self.export_done && next > rank(Some(SectionId::Export)) {
            let mut exports = wasm_encoder::ExportSection::new();
            self.add_exports(&mut exports);
            module.section(&exports);
        }
        Ok(())
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> ReencodeResult<()> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([], [ValType::I32]);
        types.ty().function([ValType::I32], [ValType::I32]);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> ReencodeResult<()> {
        reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.ty);
        functions.function(self.ty + 1);
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> ReencodeResult<()> {
        reencode::utils::parse_memory_section(self, memories, section)?;
        self.add_memory(memories);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> ReencodeResult<()> {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.add_global(globals);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> ReencodeResult<()> {
        reencode::utils::parse_export_section(self, exports, section)?;
        self.add_exports(exports);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> ReencodeResult<()> {
        reencode::utils::parse_code_section(self, code, section)?;
        code.function(&self.read_function());
        code.function(&self.edge_function());
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> ReencodeResult<()> {
        let mut f = self.new_function_with_parsed_locals(&func)?;
        let mut reader = func.get_operators_reader()?;
        self.emit_probe(&mut f);
        let fetches = self.fetches.remove(&self.body).unwrap_or_default();
        self.body += 1;
        let mut fetches = fetches.into_iter().peekable();
        let mut depth = 1usize;
        let mut at = 0usize;
        while !reader.eof() {
            let op = reader.read()?;
            if fetches.next_if_eq(&at).is_some() {
                f.instruction(&Instruction::Call(self.func + 1));
            }
            at += 1;
            match op {
                Operator::Block { .. }
                | Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::Try { .. }
                | Operator::TryTable { .. } => depth += 1,
                Operator::End => depth -= 1,
                _ => {}
            }
            let probe = probe_after(&op) && depth > 0;
            f.instruction(&self.instruction(op)?);
            if probe {
                self.emit_probe(&mut f);
            }
        }
        code.function(&f);
        Ok(())
    }
}
