namespace Loop.Docker.Tests;

using System.Diagnostics;
using System.Text;
using global::Docker.DotNet;
using global::Docker.DotNet.Models;
using Loop.Domain.Agents;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>One engine client and one test image for every test: the image is built once, through
/// our own <see cref="ImageBuilder"/>, FROM the local debootstrap base.</summary>
public sealed class DockerFixture : IAsyncLifetime
{
    public const string TestImage = "loop-docker-test:latest";

    /// <summary>A copy of the agent image's entrypoint contract: KEY=VALUE lines on stdin up to an
    /// empty line become the environment, then the command runs.</summary>
    public const string EntrypointScript = """
        #!/bin/sh
        set -e
        while IFS= read -r line; do
          [ -z "$line" ] && break
          export "$line"
        done
        exec "$@"
        """;

    public const string Dockerfile = """
        FROM loop-test-base:latest
        COPY entrypoint.sh /usr/local/bin/loop-entrypoint
        ENTRYPOINT ["/usr/local/bin/loop-entrypoint"]
        """;

    /// <summary>The engine as the daemon finds it (DOCKER_HOST, contexts, the default socket).</summary>
    public DockerEngine Engine { get; } = DockerEngine.FromEnvironment();

    /// <summary>The same engine seen from outside Loop's code, as a person with docker access sees it.</summary>
    public IDockerClient Client { get; private set; } = null!;

    public List<string> BuildOutput { get; } = [];

    public async Task InitializeAsync()
    {
        var files = new Dictionary<string, byte[]>
        {
            ["Dockerfile"] = Encoding.UTF8.GetBytes(Dockerfile),
            ["entrypoint.sh"] = Encoding.UTF8.GetBytes(EntrypointScript + "\n"),
        };
        Client = await Engine.ConnectAsync(CancellationToken.None);
        await new ImageBuilder(Engine).BuildAsync(TestImage, files, new Dictionary<string, string>(), BuildOutput.Add, CancellationToken.None);
    }

    public Task DisposeAsync()
    {
        Engine.Dispose();
        return Task.CompletedTask;
    }

    public ContainerSandbox Sandbox(string? user = "1000:1000", long memoryMb = 256, string image = TestImage, DockerEngine? engine = null) =>
        new(engine ?? Engine, new ContainerSandboxOptions(image, memoryMb, 1.0, 128, "/home/agent", user), TimeProvider.System, NullLogger<ContainerSandbox>.Instance);

    /// <summary>Containers, stopped ones included, carrying the label, as `docker ps -a --filter label=…` lists them.</summary>
    public async Task<IList<ContainerListResponse>> ContainersLabelledAsync(string key, string value) =>
        await Client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{key}={value}"] = true } },
        });

    public static SandboxSpec Spec(
        IReadOnlyList<string> command,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? secrets = null,
        IReadOnlyList<BindMount>? mounts = null,
        IReadOnlyDictionary<string, string>? labels = null,
        string workDir = "/tmp",
        string input = "")
    {
        var runId = "run-" + Guid.NewGuid().ToString("N")[..12];
        return new SandboxSpec(
            runId,
            "channel-test",
            command,
            workDir,
            mounts ?? [],
            secrets ?? new Dictionary<string, string>(),
            labels ?? new Dictionary<string, string> { ["loop.test"] = "docker-tests", ["loop.run"] = runId },
            timeout ?? TimeSpan.FromSeconds(60),
            [])
        { Input = input };
    }

    /// <summary>Runs the real docker CLI, as a person checking our work would.</summary>
    public static async Task<(int ExitCode, string Output)> DockerCliAsync(params string[] args)
    {
        var start = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A host directory the container's non-root user may write to.</summary>
    public static string TempDir()
    {
        var path = Directory.CreateTempSubdirectory("loop-docker-test-").FullName;
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, (UnixFileMode)0b111_111_111);
        }
        return path;
    }
}

[CollectionDefinition(Name)]
public sealed class DockerCollection : ICollectionFixture<DockerFixture>
{
    public const string Name = "docker";
}
