// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pipe-run",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PipeRun", targets: ["PipeRun"]),
        .library(name: "PipeRunCLI", targets: ["PipeRunCLI"]),
        .executable(name: "pipe-run", targets: ["pipe-run"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        .target(name: "CScan"),
        // Blocks the stop signals before main (see stop_signals.c); only the command line links it.
        .target(name: "CStartup"),
        .target(
            name: "PipeRun",
            dependencies: ["CZlib", "CScan"]
        ),
        .target(
            name: "PipeRunCLI",
            dependencies: [
                "PipeRun",
                "CStartup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "pipe-run",
            dependencies: ["PipeRunCLI"]
        ),
        .testTarget(
            name: "PipeRunTests",
            dependencies: ["PipeRun", "CScan", "CZlib"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
