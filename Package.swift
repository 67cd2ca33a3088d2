// swift-tools-version: 6.0
import PackageDescription

// Dependencies point one way: selfspec (CLI) -> Benchmarks (RAG QA eval) -> Server -> Generator/Tuner -> Evaluation/VectorIndex/Ingest
// -> LLM/SQLiteDB -> Tensor -> C shims.
// The fuzzer build (`scripts/fuzz`, SELFSPEC_FUZZ_BUILD=1) keeps Swift's bounds and overflow checks,
// which -Ounchecked drops, so that a bad index traps instead of reading on.
let unchecked = Context.environment["SELFSPEC_FUZZ_BUILD"] == nil ? "-Ounchecked" : "-O"
let optimize: [SwiftSetting] = [.unsafeFlags([unchecked, "-wmo"], .when(configuration: .release))]
// The LLM kernels use 256-bit AVX, FMA and F16C (checked at run time by `CPUFeatures`); not AVX2,
// which some of the x86-64 machines we run on lack (`-target-cpu haswell` would emit it).
let llmKernels: [SwiftSetting] = optimize + [.unsafeFlags(["-Xcc", "-mavx", "-Xcc", "-mfma", "-Xcc", "-mf16c"])]

let package = Package(
    name: "SelfSpec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "selfspec", targets: ["selfspec"]),
        .library(name: "Ingest", targets: ["Ingest"]),
        .library(name: "VectorIndex", targets: ["VectorIndex"]),
        .library(name: "Generator", targets: ["Generator"]),
        .library(name: "Tuner", targets: ["Tuner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        // MARK: C system libraries (apt: libsqlite3-dev, libopenblas-dev, libxml2-dev, zlib1g-dev)
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibXML2", path: "Sources/CLibXML2", pkgConfig: "libxml-2.0",
                       providers: [.apt(["libxml2-dev"])]),

        // MARK: C kernels (compiled for baseline x86-64; AVX/AVX2 + FMA paths chosen at run time)
        .target(name: "CKernels"),

        // MARK: Libraries
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: optimize),
        // The SQLite connection and statements, shared by the corpus store and the vector store.
        .target(name: "SQLiteDB", dependencies: ["CSQLite"], swiftSettings: optimize),
        .target(name: "Ingest", dependencies: ["SQLiteDB", "CLibXML2", "CZlib"], swiftSettings: optimize),
        .target(name: "VectorIndex", dependencies: ["Tensor", "Ingest", "SQLiteDB", "CKernels"], swiftSettings: optimize),
        .target(name: "LLM", dependencies: ["Tensor", "CKernels"], swiftSettings: llmKernels),
        .target(name: "Generator", dependencies: ["LLM", "VectorIndex", "Evaluation"], swiftSettings: optimize),
        .target(name: "Tuner", dependencies: ["LLM"], swiftSettings: optimize),
        .target(name: "Evaluation", dependencies: ["LLM", "Tensor"], swiftSettings: optimize),
        // Benchmarks of the engines, the RAG QA evaluation (through the server's `ask` path) and the run report:
        // the measurements behind `selfspec bench`, `eval --rag-qa` and `report`.
        .target(name: "Benchmarks", dependencies: ["Tensor", "SQLiteDB", "Ingest", "VectorIndex", "LLM", "Evaluation", "Generator", "Tuner", "Server"],
                swiftSettings: optimize),
        // `selfspec specialize experiment`: corpus -> data recipes -> curate -> tune -> eval -> report, resumable.
        .target(name: "Experiment", dependencies: ["Ingest", "VectorIndex", "Generator", "Tuner", "Evaluation", "LLM", "Tensor"],
                swiftSettings: optimize),
        .target(name: "Server", dependencies: [
            "LLM", "Ingest", "VectorIndex", "Evaluation", .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: optimize),
        // The parsers fed with arbitrary bytes (`scripts/fuzz`), and their libFuzzer entry / replay tool.
        .target(name: "FuzzTargets", dependencies: ["LLM", "Tensor", "Ingest", "Generator", "Evaluation", "Tuner", "Server"],
                swiftSettings: optimize),
        .executableTarget(name: "selfspec-fuzz", dependencies: ["FuzzTargets"], swiftSettings: optimize),
        .executableTarget(name: "selfspec", dependencies: [
            "Ingest", "VectorIndex", "Generator", "Tuner", "Server", "Evaluation", "Benchmarks", "Experiment",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimize),

        // MARK: Tests (one target per module)
        // Helpers shared by the test targets (temporary files removed after each test).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["TestSupport", "Tensor", "CKernels"]),
        .testTarget(name: "IngestTests", dependencies: ["TestSupport", "Ingest"], resources: [.copy("Fixtures")]),
        .testTarget(name: "VectorIndexTests", dependencies: ["TestSupport", "VectorIndex", "Ingest", "SQLiteDB"]),
        .testTarget(name: "LLMTests", dependencies: ["TestSupport", "LLM", "CKernels"]),
        .testTarget(name: "GeneratorTests", dependencies: ["TestSupport", "Generator"]),
        .testTarget(name: "TunerTests", dependencies: ["TestSupport", "Tuner"]),
        .testTarget(name: "EvaluationTests", dependencies: ["TestSupport", "Evaluation"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["TestSupport", "Benchmarks", "LLM", "Tensor", "Evaluation", "Server", "VectorIndex", "Ingest"]),
        .testTarget(name: "ExperimentTests", dependencies: ["TestSupport", "Experiment", "Evaluation"]),
        .testTarget(name: "ServerTests", dependencies: ["TestSupport", "Server", "Ingest"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["TestSupport", "FuzzTargets", "LLM", "Tensor"]),
        .testTarget(name: "selfspecTests", dependencies: ["TestSupport", "selfspec", "Ingest", "SQLiteDB"]),
    ]
)
