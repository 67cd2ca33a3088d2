import Foundation
import Tensor

// MARK: - Tasks

/// The benchmark families `selfspec eval` scores.
public enum EvalTask: String, CaseIterable, Sendable, Codable {
    /// PubMedQA: yes/no/maybe over an abstract (accuracy, macro-F1).
    case pubmedqa
    /// Multiple choice with lettered options (accuracy).
    case mcq
    /// Named entities from IOB files (entity-level exact-span precision, recall, F1).
    case ner
    /// GAD-style gene–disease relation: is the masked pair related? (F1 of the positive class).
    case gad

    /// A task by name.
    /// - Throws: `EvaluationError.unknownTask` listing the known names.
    public init(name: String) throws {
        guard let task = EvalTask(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
            throw EvaluationError.unknownTask(name)
        }
        self = task
    }

    /// The metric a paired comparison and the summary table lead with.
    public var primaryMetric: Metric {
        switch self {
        case .pubmedqa, .mcq: return .accuracy
        case .ner: return .f1
        case .gad: return .positiveF1
        }
    }

    /// The scoring convention the summary leads with, chosen on the development sets (README,
    /// "Scoring conventions"). NER is always scored by generation.
    public var primaryScoring: Scoring {
        switch self {
        case .pubmedqa, .mcq, .gad: return .calibrated
        case .ner: return .generate
        }
    }

    /// The conventions reported for the task: all four for label tasks, generation for NER.
    public var scorings: [Scoring] { self == .ner ? [.generate] : Scoring.allCases }

    /// Every metric reported for the task, primary first.
    public var metrics: [Metric] {
        switch self {
        case .pubmedqa: return [.accuracy, .macroF1]
        case .mcq: return [.accuracy]
        case .ner: return [.f1, .precision, .recall]
        case .gad: return [.positiveF1, .accuracy]
        }
    }
}

/// A score's name as it appears in reports.
public enum Metric: String, Sendable, Codable, CaseIterable {
    case accuracy
    case macroF1 = "macro_f1"
    /// F1 of the positive class (label index 0 of a binary task).
    case positiveF1 = "f1_positive"
    /// Entity-level exact-span scores.
    case precision, recall, f1
}

// MARK: - Items

/// An item answered by choosing one of a few labels (PubMedQA, multiple choice, GAD).
public struct LabelItem: Sendable, Equatable {
    /// The record's id in its file (PMID, JSON key, `line N`).
    public var id: String
    /// The item as the prompt shows it, e.g. "Context: …\nQuestion: …".
    public var input: String
    /// The answers the model may give, as it should write them ("yes", "B").
    public var labels: [String]
    /// Index of the right answer in `labels`.
    public var gold: Int
    /// Multiple choice: the text of each option, in label order (empty for other tasks).
    public var options: [String]

    public init(id: String, input: String, labels: [String], gold: Int, options: [String] = []) {
        self.id = id
        self.input = input
        self.labels = labels
        self.gold = gold
        self.options = options
    }
}

/// A PubMedQA record as its file holds it.
public struct PubMedQARecord: Sendable, Equatable {
    public var pmid: String
    public var question: String
    /// The abstract's sections, in order.
    public var contexts: [String]
    /// The sections' labels (`LABELS`: BACKGROUND, METHODS, …), empty when the file has none.
    public var sectionLabels: [String] = []
    /// Index of `final_decision` in `EvalDataLoader.pubmedQALabels`.
    public var decision: Int
    public var longAnswer: String?
}

/// A multiple-choice record as its file holds it.
public struct MultipleChoiceRecord: Sendable, Equatable {
    public var id: String
    public var question: String
    /// The option letters ("A", "B", …) and their texts, in letter order.
    public var letters: [String]
    public var options: [String]
    /// Index of the right option.
    public var answer: Int

    /// One `A. text` line per option.
    public var listedOptions: String { zip(letters, options).map { "\($0). \($1)" }.joined(separator: "\n") }
}

/// An entity mention as a span of sentence tokens `start..<end`.
public struct EntitySpan: Hashable, Sendable, Codable, Comparable {
    public var start: Int
    public var end: Int
    public var type: String

    public init(start: Int, end: Int, type: String) {
        self.start = start
        self.end = end
        self.type = type
    }

    public static func < (a: EntitySpan, b: EntitySpan) -> Bool {
        (a.start, a.end, a.type) < (b.start, b.end, b.type)
    }
}

/// One sentence of an IOB file with its gold entities.
public struct NERSentence: Sendable, Equatable {
    /// `line N`: the line of the sentence's first token.
    public var id: String
    public var tokens: [String]
    public var entities: [EntitySpan]

    public init(id: String, tokens: [String], entities: [EntitySpan]) {
        self.id = id
        self.tokens = tokens
        self.entities = entities
    }

    /// The sentence as the prompt shows it: the tokens joined by spaces.
    public var text: String { tokens.joined(separator: " ") }
}

/// The items of one task read from one file.
public struct TaskDataset: Sendable {
    public enum Items: Sendable {
        case labels([LabelItem])
        case sentences([NERSentence])
    }

    public var task: EvalTask
    public var file: String
    public var items: Items

    public init(task: EvalTask, file: String, items: Items) {
        self.task = task
        self.file = file
        self.items = items
    }

    public var count: Int {
        switch items {
        case let .labels(l): return l.count
        case let .sentences(s): return s.count
        }
    }

    /// What identifies an item's content, so demonstrations equal to an evaluated item are dropped.
    public var contentKeys: [String] {
        switch items {
        case let .labels(l): return l.map(\.input)
        case let .sentences(s): return s.map(\.text)
        }
    }

    /// The items at `indices`, in that order.
    public func selecting(_ indices: [Int]) -> TaskDataset {
        var copy = self
        switch items {
        case let .labels(l): copy.items = .labels(indices.map { l[$0] })
        case let .sentences(s): copy.items = .sentences(indices.map { s[$0] })
        }
        return copy
    }

    /// The first `limit` items after a shuffle seeded with `seed` (all of them, shuffled, when
    /// `limit` is nil), so that a quick run sees a sample of the whole file rather than its head.
    /// `skip` drops the first items of that order first: `skip: 200` gives items disjoint from
    /// `limit: 200` with the same seed (a split to choose a prompt or setting on, apart from the
    /// items reported).
    public func sample(limit: Int?, seed: UInt64, skip: Int = 0) -> TaskDataset {
        var rng = SplitMix64(seed: seed)
        var order = Array(0..<count)
        order.shuffle(using: &rng)
        return selecting(Array(order.dropFirst(max(0, skip)).prefix(max(0, limit ?? count))))
    }
}
