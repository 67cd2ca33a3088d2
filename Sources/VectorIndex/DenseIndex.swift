import Foundation

/// Loads the dense index of a corpus for search: exact search over all stored vectors, or the
/// HNSW graph saved in the corpus, brought up to date with the stored vectors (passages added
/// since it was saved are inserted, passages deleted since are removed) and saved again unless
/// the corpus is read-only.
public enum DenseIndex {
    /// The name of the saved HNSW graph in `ann_graphs`.
    public static let graphName = "hnsw"

    /// Which index answers dense queries.
    public enum Kind: String, Sendable, CaseIterable { case hnsw, exact }

    /// What ``load(_:kind:efSearch:)`` did.
    public struct LoadReport: Sendable {
        public var vectors = 0
        public var added = 0
        public var removed = 0
        public var rebuilt = false
        public var saved = false
    }

    /// Loads (and, for HNSW, updates and, unless `store` is read-only, saves) the dense index of `store`.
    /// - Returns: nil when nothing is embedded yet.
    /// - Throws: ``RetrievalError/corruptVector(passageID:bytes:expected:)``, ``VectorIndexError``.
    public static func load(_ store: VectorStore, kind: Kind = .hnsw, efSearch: Int = 64,
                            progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> (index: any VectorSearchIndex, report: LoadReport)? {
        let all = try store.loadAll()
        guard !all.ids.isEmpty, let model = try store.model() else { return nil }
        var report = LoadReport()
        report.vectors = all.ids.count
        let d = all.dimension
        switch kind {
        case .exact:
            let index = try ExactIndex(dimension: d)
            try index.add(ids: all.ids, vectors: all.values)
            return (index, report)
        case .hnsw:
            var rowOf: [Int64: Int] = [:]
            rowOf.reserveCapacity(all.ids.count)
            for (i, id) in all.ids.enumerated() { rowOf[id] = i }
            func vector(_ id: Int64) -> [Float]? {
                rowOf[id].map { Array(all.values[$0 * d..<($0 + 1) * d]) }
            }
            var index: HNSWIndex?
            if let saved = try store.loadGraph(name: graphName), saved.modelID == model.id, saved.dimension == d {
                // A graph that does not decode is rebuilt rather than trusted.
                index = try? HNSWIndex(serialized: saved.data, vectors: { vector($0) })
            }
            if index == nil {
                index = try HNSWIndex(dimension: d, parameters: .init(efSearch: efSearch))
                report.rebuilt = true
            }
            let hnsw = index!
            hnsw.efSearch = efSearch
            // Remove what is no longer stored, add what is new.
            for id in hnsw.allIDs where rowOf[id] == nil {
                try hnsw.remove(id: id)
                report.removed += 1
            }
            var newIDs: [Int64] = [], newValues: [Float] = []
            for (i, id) in all.ids.enumerated() where !hnsw.contains(id: id) {
                newIDs.append(id)
                newValues.append(contentsOf: all.values[i * d..<(i + 1) * d])
            }
            let step = 2048
            var at = 0
            while at < newIDs.count {
                let end = min(at + step, newIDs.count)
                try hnsw.add(ids: Array(newIDs[at..<end]), vectors: Array(newValues[at * d..<end * d]))
                at = end
                progress?(at, newIDs.count)
            }
            report.added = newIDs.count
            if (report.added > 0 || report.removed > 0 || report.rebuilt) && !store.isReadOnly {
                try store.saveGraph(name: graphName, modelID: model.id, dimension: d, vectors: hnsw.count,
                                    data: hnsw.serialized(includeVectors: false))
                report.saved = true
            }
            return (hnsw, report)
        }
    }
}
