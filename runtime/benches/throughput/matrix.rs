//! The benchmark's cells: for each workload, the message sizes, partition counts and documents
//! per execution measured, and how many messages each cell sends.

/// Documents per listener batch (and per raw loop's batch) in the bridge cells.
pub const BRIDGE_BATCH: usize = 100;

/// Documents a chunk of `sluice run --input FILE` holds (the runtime's CHUNK_DOCUMENTS): the
/// raw loop beside it waits for its deliveries as often.
pub const RUN_CHUNK: usize = 16_384;

/// One benchmark cell.
#[derive(Clone, Debug)]
pub struct Cell {
    /// `produce`, `consume`, `bridge` or `run` (`sluice run --input` over a JSONL file of
    /// 100,000 × 1 KiB documents, about 107 MB).
    pub workload: &'static str,
    /// Payload bytes of each message.
    pub size: usize,
    /// Partitions of each topic the cell creates.
    pub partitions: i32,
    /// Documents per execution (produce), per Consume (all of them) or per listener batch.
    pub per_execution: usize,
    /// Messages the cell sends or reads.
    pub count: usize,
}

impl Cell {
    /// `produce/1024/4p/100`: workload, size, partitions, documents per execution.
    pub fn label(&self) -> String {
        format!(
            "{}/{}/{}p/{}",
            self.workload, self.size, self.partitions, self.per_execution
        )
    }
}

/// The cells of a run, in the order they are measured and reported. `quick`: the two smaller
/// sizes only, no one-document executions, and the bridge at 1 KiB only. The `sluice run`
/// cell comes last in both.
pub fn matrix(quick: bool) -> Vec<Cell> {
    let sizes: &[usize] = if quick {
        &[100, 1024]
    } else {
        &[100, 1024, 100 * 1024, 9_961_472]
    };
    let mut cells = Vec::new();
    for &size in sizes {
        // Enough messages for a few seconds of work at each size; small documents produce
        // fast enough on the in-memory broker that fewer would time scheduler noise.
        let (produced, consumed) = match size {
            0..=1024 => (200_000, 100_000),
            1025..=102_400 => (2_000, 2_000),
            _ => (20, 20),
        };
        for partitions in [1, 4] {
            push_produce_cells(&mut cells, quick, size, partitions, produced);
            cells.push(Cell {
                workload: "consume",
                size,
                partitions,
                per_execution: consumed,
                count: consumed,
            });
            if size <= 1024 && (!quick || size == 1024) {
                cells.push(Cell {
                    workload: "bridge",
                    size,
                    partitions,
                    // A listener's batch: the listen operation's default max-messages.
                    per_execution: BRIDGE_BATCH,
                    count: 20_000,
                });
            }
        }
    }
    cells.push(Cell {
        workload: "run",
        size: 1024,
        partitions: 1,
        per_execution: RUN_CHUNK,
        count: 100_000,
    });
    cells
}

/// The produce cells of one size and partition count: 1, 100 and 10 000 documents per
/// execution, as far as they differ.
fn push_produce_cells(
    cells: &mut Vec<Cell>,
    quick: bool,
    size: usize,
    partitions: i32,
    count: usize,
) {
    for per_execution in [1, 100, 10_000] {
        if quick && per_execution == 1 {
            continue;
        }
        // One execution per document creates a client per document: fewer of them.
        let count = if per_execution == 1 {
            count.min(500)
        } else {
            count
        };
        let cell = Cell {
            workload: "produce",
            size,
            partitions,
            per_execution: per_execution.min(count),
            count,
        };
        // With few messages, 100 and 10 000 per execution are the same cell.
        if !cells.iter().any(|c| c.label() == cell.label()) {
            cells.push(cell);
        }
    }
}
