// swift-tools-version:6.1
import CompilerPluginSupport
import PackageDescription

/// Settings every Phylactery target compiles with (see shared STYLE.md §3 and §6).
let upcomingFeatures = ["ExistentialAny", "InternalImportsByDefault", "MemberImportVisibility", "NonisolatedNonsendingByDefault"]
let swiftSettings: [SwiftSetting] = upcomingFeatures.map { .enableUpcomingFeature($0) }

/// The embedded server reads `struct stat` from opened descriptors. Clang imports that C struct once
/// per build and attributes it to whichever module loaded the header first (Glibc, CoreFoundation or
/// CDispatch, differently in debug and release builds), so MemberImportVisibility cannot be satisfied
/// for its members by any one import: this target goes without that upcoming feature.
let embeddedSwiftSettings: [SwiftSetting] = upcomingFeatures.filter { $0 != "MemberImportVisibility" }.map { .enableUpcomingFeature($0) }

let package = Package(
    name: "phylactery",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Phylactery", targets: ["Phylactery"]),
        .library(name: "PhylacteryEmbedded", targets: ["PhylacteryEmbedded"]),
        .library(name: "PhylacteryBackup", targets: ["PhylacteryBackup"]),
        .library(name: "PhylacteryTestSupport", targets: ["PhylacteryTestSupport"]),
        .library(name: "PhylacteryRuntime", targets: ["PhylacteryRuntime"]),
        .library(name: "PhylacteryCommands", targets: ["PhylacteryCommands"]),
        .library(name: "PhylacteryConsole", targets: ["PhylacteryConsole"]),
        // The two example extensions, for example daemons (Examples/Daemon) to host.
        .library(name: "NotebookExtension", targets: ["NotebookExtension"]),
        .library(name: "TasksExtension", targets: ["TasksExtension"]),
        .executable(name: "phylactery", targets: ["PhylacteryCLI"]),
        .executable(name: "phylactery-bench", targets: ["PhylacteryBench"]),
        .executable(name: "phylactery-chaos", targets: ["PhylacteryChaos"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
        .package(url: "https://github.com/swiftlang/swift-syntax.git", from: "603.0.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML", "CommandLineArguments"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // The library: database core, codec, registry, migrations and the chambers.
        .target(
            name: "Phylactery",
            dependencies: [
                "PhylacteryMacros",
                "PhylacteryNaming",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Swift-to-SQL naming rules, shared by the library and the macro (which cannot import the library).
        .target(name: "PhylacteryNaming", swiftSettings: swiftSettings),
        // The compiler plugin behind `@Model` and its property markers (`@Column`, `@Index`, …).
        .macro(
            name: "PhylacteryMacros",
            dependencies: [
                "PhylacteryNaming",
                .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
                .product(name: "SwiftDiagnostics", package: "swift-syntax"),
                .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftSyntaxBuilder", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
            ],
            swiftSettings: swiftSettings
        ),
        // The local PostgreSQL 18 + pgvector server: install, initdb, start, stop.
        .target(
            name: "PhylacteryEmbedded",
            dependencies: [
                "Phylactery",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: embeddedSwiftSettings
        ),
        // The runtime a daemon runs: one Service that starts or waits for the server, migrates by
        // policy, runs the workers, the tracer and housekeeping, and stops them in reverse order;
        // its configuration through swift-configuration (flags, environment, file, secrets).
        .target(
            name: "PhylacteryRuntime",
            dependencies: [
                "Phylactery",
                "PhylacteryEmbedded",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // Backups and reanimation: WAL archiving, verified (optionally encrypted) base backups and
        // point-in-time restore of the embedded server's cluster; logical backups with pg_dump/pg_restore,
        // per-extension export, import and purge, and upgrades of the server binaries (minor: switch;
        // major: pg_upgrade after a verified backup).
        .target(
            name: "PhylacteryBackup",
            dependencies: [
                "Phylactery",
                "PhylacteryEmbedded",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers for tests, shipped so extension authors can test their models too.
        .target(
            name: "PhylacteryTestSupport",
            dependencies: ["Phylactery", "PhylacteryEmbedded"],
            swiftSettings: swiftSettings
        ),
        // Example extensions the `phylactery` binary hosts: a jsonb document model, a foreign key to a core model.
        .target(name: "NotebookExtension", dependencies: ["Phylactery"], path: "Examples/Notebook", swiftSettings: swiftSettings),
        .target(name: "TasksExtension", dependencies: ["Phylactery"], path: "Examples/Tasks", swiftSettings: swiftSettings),
        // The extension the author's guide builds (Phylactery's DocC article "Writing an extension").
        .target(
            name: "JournalExtension",
            dependencies: ["Phylactery", .product(name: "Tracing", package: "swift-distributed-tracing")],
            path: "Examples/Journal", swiftSettings: swiftSettings),
        // The queue's crash test (SIGKILLed workers, a server restart); the test command runs it.
        .executableTarget(
            name: "PhylacteryChaos",
            dependencies: [
                "Phylactery",
                "PhylacteryEmbedded",
                "PhylacteryTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operator's console: a local web server (Hummingbird) with server-rendered pages
        // (Mustache), a JSON API described by an OpenAPI file, and /metrics for scrapers (Prometheus).
        .target(
            name: "PhylacteryConsole",
            dependencies: [
                "Phylactery",
                "PhylacteryBackup",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["openapi.yaml"],
            swiftSettings: swiftSettings
        ),
        // The operator's commands as a library: argument parsing and printing over the libraries,
        // mounted by `phylactery` and by any daemon's executable under its own name.
        .target(
            name: "PhylacteryCommands",
            dependencies: [
                "Phylactery",
                "PhylacteryEmbedded",
                "PhylacteryBackup",
                "PhylacteryRuntime",
                "PhylacteryConsole",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The example daemon's executable (Examples/Daemon has its own Package.swift for building it
        // alone); compiled here so the test command builds and runs it without a second build.
        .executableTarget(
            name: "ExampleDaemon",
            dependencies: ["PhylacteryCommands", "NotebookExtension", "TasksExtension"],
            path: "Examples/Daemon/Sources/ExampleDaemon",
            swiftSettings: swiftSettings
        ),
        // The `phylactery` executable: the commands hosting the two example extensions, and the tour.
        .executableTarget(
            name: "PhylacteryCLI",
            dependencies: [
                "Phylactery",
                "PhylacteryEmbedded",
                "PhylacteryCommands",
                "NotebookExtension",
                "TasksExtension",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // End-to-end benchmarks against the real server: `swift run -c release phylactery-bench <suite>`.
        .executableTarget(
            name: "PhylacteryBench",
            dependencies: [
                "Phylactery",
                "PhylacteryEmbedded",
                "PhylacteryBackup",
                "PhylacteryTestSupport",
                "PhylacteryConsole",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The console suite requests pages through the router in-process.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // No database needed.
        .testTarget(
            name: "PhylacteryTests",
            dependencies: [
                "Phylactery", "PhylacteryEmbedded", "PhylacteryBackup", "PhylacteryTestSupport", "PhylacteryRuntime",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Expands `@Model` on source text and compares it with the expected code; no compiler needed.
        .testTarget(
            name: "PhylacteryMacroTests",
            dependencies: [
                "PhylacteryMacros",
                .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacroExpansion", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacrosGenericTestSupport", package: "swift-syntax"),
            ],
            swiftSettings: swiftSettings
        ),
        // Needs PostgreSQL with pgvector (PHYLACTERY_DATABASE_URL or the embedded server).
        .testTarget(
            name: "PhylacteryIntegrationTests",
            dependencies: [
                "Phylactery", "PhylacteryTestSupport", "PhylacteryBackup", "JournalExtension", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starts and kills its own embedded servers in temporary directories.
        .testTarget(
            name: "PhylacteryEmbeddedTests",
            dependencies: [
                "Phylactery", "PhylacteryEmbedded", "PhylacteryBackup", "PhylacteryTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Runs PhylacteryRuntime against embedded servers of its own and the test command's server.
        .testTarget(
            name: "PhylacteryRuntimeTests",
            dependencies: [
                "Phylactery", "PhylacteryEmbedded", "PhylacteryRuntime", "PhylacteryTestSupport", "TasksExtension",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: swiftSettings
        ),
        // Backups: unit tests of the rules, and the restore drill, corruption and encryption tests on
        // private embedded servers.
        .testTarget(
            name: "PhylacteryBackupTests",
            dependencies: [
                "Phylactery", "PhylacteryEmbedded", "PhylacteryBackup", "PhylacteryTestSupport", "PhylacteryCLI", "TasksExtension", "PhylacteryConsole",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The console over HTTP (HummingbirdTesting) against the test command's server.
        .testTarget(
            name: "PhylacteryConsoleTests",
            dependencies: [
                "Phylactery", "PhylacteryConsole", "PhylacteryTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Runs the built `phylactery` executable and reads what it prints.
        .testTarget(
            name: "PhylacteryCLITests",
            dependencies: ["PhylacteryCLI", "ExampleDaemon", "PhylacteryEmbedded", "PhylacteryTestSupport", "TasksExtension", .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: swiftSettings
        ),
        // Headless Chromium through chromedriver (Debian's chromium and chromium-driver, which the test
        // command installs): a small WebDriver client and the console driven in a real browser.
        .testTarget(
            name: "PhylacteryConsoleBrowserTests",
            dependencies: [
                "Phylactery", "PhylacteryEmbedded", "PhylacteryTestSupport", "PhylacteryConsole",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
