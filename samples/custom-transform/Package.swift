// swift-tools-version:6.0
// A package of your own transforms, with a binary that is the whole pipe-run command line plus
// them. Copy this folder to start one.
import PackageDescription

let package = Package(
    name: "my-transforms",
    platforms: [.macOS(.v15)],
    dependencies: [
        // In your own package, depend on a released pipe-run instead, e.g.:
        // .package(url: "https://github.com/OWNER/pipe-run.git", from: "0.1.0"),
        .package(name: "pipe-run", path: "../.."),
    ],
    targets: [
        .target(
            name: "MyTransforms",
            dependencies: [.product(name: "PipeRun", package: "pipe-run")]
        ),
        .executableTarget(
            name: "my-pipe-run",
            dependencies: ["MyTransforms", .product(name: "PipeRunCLI", package: "pipe-run")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
