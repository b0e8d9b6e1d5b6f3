namespace Loop.Runtime;

using Loop.Config;
using Loop.Docker;
using Loop.Domain.Agents;
using Microsoft.Extensions.Logging;

/// <summary>
/// Where this node runs agents: Docker (the engine, its state and the agent image), the process
/// runner, or a replacement the options give (benchmarks); and what an agent there is handed to
/// reach Loop (<see cref="Agent"/>).
/// </summary>
public sealed class NodeSandbox : IDisposable
{
    public NodeSandbox(LoopNodeOptions options, RunUserPolicy runUsers, NodeIdentity identity, NodeWarnings warnings, TimeProvider time, ILoggerFactory loggers)
    {
        var config = options.Config;
        if (options.Sandbox is { } replacement)
        {
            Sandbox = replacement;
        }
        else if (config.Runner == RunnerKind.Process)
        {
            Sandbox = new ProcessSandbox(time, loggers.CreateLogger<ProcessSandbox>());
            warnings.Add("runner is 'process': agents run directly on this machine with no isolation");
        }
        else
        {
            Docker = DockerEngine.FromEnvironment();
            Engine = new DockerEngineState(Docker, config.ContainerImage, ImageSource(options, warnings), options.ImageBuildArgs,
                time, loggers.CreateLogger<DockerEngineState>());
            var container = new ContainerSandbox(Docker, new ContainerSandboxOptions(
                config.ContainerImage, config.ContainerMemoryMb, config.ContainerCpus, config.ContainerPidsLimit,
                options.Paths.UserHome, User: null), time, loggers.CreateLogger<ContainerSandbox>());
            Sandbox = new ImageGatedSandbox(container, Engine);
        }

        if (Kind == "docker" && runUsers.RootWarning() is { } asRoot)
        {
            warnings.Add(asRoot);
        }
        else if (runUsers.DaemonIsRoot)
        {
            warnings.Add($"loop serve runs as root and runner is '{Kind}': agents run as root on this machine");
        }
        Agent = AgentEnvironmentFor(Kind, config, options.Paths, identity);
    }

    public ISandbox Sandbox { get; }

    /// <summary>"docker", "process", or the replacement's kind.</summary>
    public string Kind => Sandbox.Kind;

    /// <summary>The Docker engine when agents run in containers.</summary>
    public DockerEngine? Docker { get; }

    /// <summary>The engine's reachability and the agent image, when agents run in containers.</summary>
    public DockerEngineState? Engine { get; }

    public AgentEnvironment Agent { get; }

    private static AgentEnvironment AgentEnvironmentFor(string kind, LoopConfig config, LoopPaths paths, NodeIdentity identity)
    {
        var apiUrl = "unix://" + paths.DaemonSocket;
        if (kind != "docker")
        {
            var self = Environment.ProcessPath;
            var loop = self is not null && Path.GetFileNameWithoutExtension(self) == "loop" ? self : "loop";
            return new AgentEnvironment(config.ClaudeBinPath, loop, null, apiUrl, null, identity.ContainerLabels);
        }
        const string inContainer = "/opt/loop/bin/loop";
        var binary = LinuxLoopBinary();
        return new AgentEnvironment("claude", inContainer,
            binary is null ? null : new BindMount(binary, inContainer, ReadOnly: true),
            apiUrl, paths.SocketDir, identity.ContainerLabels);
    }

    /// <summary>The self-contained linux-x64 <c>loop</c> that containers run for <c>loop mcp</c>:
    /// this process when it is one, else the published one beside it.</summary>
    private static string? LinuxLoopBinary()
    {
        var candidates = new[]
        {
            Environment.GetEnvironmentVariable("LOOP_CONTAINER_BINARY"),
            OperatingSystem.IsLinux() && Environment.ProcessPath is { } self && Path.GetFileName(self) == "loop" && IsSingleFile(self) ? self : null,
            Path.Combine(AppContext.BaseDirectory, "linux-x64", "loop"),
        };
        return candidates.FirstOrDefault(c => c is not null && File.Exists(c));
    }

    private static bool IsSingleFile(string path) => !File.Exists(Path.Combine(Path.GetDirectoryName(path)!, "loop.dll"));

    public void Dispose() => Docker?.Dispose();

    /// <summary>Holds runs back while the agent image is still being checked or built.</summary>
    private sealed class ImageGatedSandbox(ISandbox inner, DockerEngineState engine) : ISandbox
    {
        public string Kind => inner.Kind;

        public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
        {
            if (!await engine.WaitForImageAsync(cancellationToken))
            {
                throw new SandboxUnavailableException($"the agent image {engine.Image} is not available: {engine.Health.ImageStatus}");
            }
            return await inner.RunAsync(spec, onStdoutLine, onStarted, cancellationToken);
        }
    }

    /// <summary>The user's build directory, or the embedded files when it has no Dockerfile or cannot be read.</summary>
    private static AgentImageSource ImageSource(LoopNodeOptions options, NodeWarnings warnings)
    {
        try
        {
            return AgentImageSource.From(options.Paths.ContainerDir, options.ImageBuildArgs);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"cannot read the agent image's files in {options.Paths.ContainerDir} ({error.Message}): the image is built from the embedded Dockerfile");
            return AgentImageSource.Embedded;
        }
    }
}
