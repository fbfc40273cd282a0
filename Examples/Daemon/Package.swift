// swift-tools-version:6.1
// An example daemon standing on Phylactery: its executable offers the operator's commands under its
// own name (`example-daemon db status`, `example-daemon migrate plan`, …) for its own extensions.
// Build it on its own with `swift build --package-path Examples/Daemon`; the main package's test
// command compiles the same sources as its `ExampleDaemon` target and runs them.
import PackageDescription

let package = Package(
    name: "example-daemon",
    platforms: [.macOS(.v15)],
    products: [.executable(name: "example-daemon", targets: ["ExampleDaemon"])],
    dependencies: [.package(name: "phylactery", path: "../..")],
    targets: [
        .executableTarget(
            name: "ExampleDaemon",
            dependencies: [
                .product(name: "PhylacteryCommands", package: "phylactery"),
                .product(name: "NotebookExtension", package: "phylactery"),
                .product(name: "TasksExtension", package: "phylactery"),
            ]
        )
    ]
)
