namespace Loop.Docker;

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using global::Docker.DotNet;
using global::Docker.DotNet.Models;
using Loop.Domain.Agents;
using Microsoft.Extensions.Logging;

/// <summary>Runs each agent command in a fresh, locked-down container that is removed afterwards.
/// Secrets travel over the container's stdin to the image's entrypoint, so they never appear in
/// the container's config, its command line or the image.</summary>
public sealed partial class ContainerSandbox(
    DockerEngine engine,
    ContainerSandboxOptions options,
    TimeProvider timeProvider,
    ILogger<ContainerSandbox> logger) : ISandbox
{
    private const int StandardErrorTailBytes = 8 * 1024;
    private const long MiB = 1024 * 1024;
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(30);

    public string Kind => "docker";

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var stdin = StdinPayload(spec);
        var request = CreateRequest(spec);
        var docker = await ConnectAsync().ConfigureAwait(false);
        // Not cancelled by the caller: a create cut short on our side may still happen on the
        // engine's, and then we would never learn the id of the container to remove.
        using var creating = new CancellationTokenSource(CleanupTimeout);
        var id = await CreateAsync(docker, request, spec.RunId, creating.Token).ConfigureAwait(false);
        try
        {
            return await RunContainerAsync(docker, id, spec, stdin, onStdoutLine, onStarted, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await RemoveQuietlyAsync(docker, id, spec.RunId).ConfigureAwait(false);
        }
    }

    internal CreateContainerParameters CreateRequest(SandboxSpec spec)
    {
        var user = UserFor(spec);
        var (uid, gid) = NumericOwner(user);
        var size = $"size={options.TmpfsSizeMb}m";
        // HOME belongs to the user alone; when the user is a name we cannot own it, so open it up.
        var homeOwner = uid is null ? "mode=1777" : $"uid={uid},gid={gid},mode=0700";
        return new CreateContainerParameters
        {
            Image = options.Image,
            Cmd = [.. spec.Command],
            WorkingDir = spec.WorkDir,
            User = user,
            Env = [$"HOME={options.HomeDir}"],
            Labels = spec.Labels.ToDictionary(),
            AttachStdin = true,
            AttachStdout = true,
            AttachStderr = true,
            OpenStdin = true,
            StdinOnce = true,
            Tty = false,
            HostConfig = new HostConfig
            {
                Mounts = [.. spec.Mounts.Select(m => new Mount { Type = "bind", Source = m.HostPath, Target = m.ContainerPath, ReadOnly = m.ReadOnly })],
                Memory = options.MemoryMb * MiB,
                MemorySwap = options.MemoryMb * MiB,
                NanoCPUs = (long)Math.Round(options.Cpus * 1e9),
                PidsLimit = options.PidsLimit,
                ReadonlyRootfs = true,
                Tmpfs = MaskedTmpfs(spec, new Dictionary<string, string>
                {
                    ["/tmp"] = $"rw,exec,nosuid,nodev,{size},mode=1777",
                    [options.HomeDir] = $"rw,exec,nosuid,nodev,{size},{homeOwner}",
                }),
                CapDrop = ["ALL"],
                SecurityOpt = ["no-new-privileges"],
                GroupAdd = [.. spec.SupplementaryGroups.Select(g => g.ToString(CultureInfo.InvariantCulture))],
            },
        };
    }

    /// <summary>The run's own user, else the sandbox's, else the daemon's; never root, whose files
    /// written to a mounted project dir (a setuid shell, say) would be root's on the host.</summary>
    private string UserFor(SandboxSpec spec)
    {
        var user = spec.User ?? options.User ?? DaemonUser.Value;
        var uid = user.Split(':')[0];
        if (uid == "root" || (uid.Length > 0 && uid.All(char.IsAsciiDigit) && uid.TrimStart('0').Length == 0))
        {
            throw new SandboxUnavailableException($"containers never run as root: run {spec.RunId} would run as {user}; set container_user in config.json, like \"1000:1000\"");
        }
        return user;
    }

    /// <summary>A small empty tmpfs over each masked path: Docker can still make mountpoints in it for
    /// deeper bind mounts, and nothing of the host shows through.</summary>
    private static Dictionary<string, string> MaskedTmpfs(SandboxSpec spec, Dictionary<string, string> tmpfs)
    {
        foreach (var path in spec.MaskedPaths ?? [])
        {
            tmpfs[path] = "rw,noexec,nosuid,nodev,size=1m,mode=0755";
        }
        return tmpfs;
    }

    private async Task<IDockerClient> ConnectAsync()
    {
        try
        {
            // Not the caller's token either: connecting is quick, and a run cancelled this early
            // is reported by the cancellation checks around it.
            using var connecting = new CancellationTokenSource(CleanupTimeout);
            return await engine.ConnectAsync(connecting.Token).ConfigureAwait(false);
        }
        catch (DockerUnavailableException e)
        {
            throw Unreachable(e);
        }
    }

    private async Task<string> CreateAsync(IDockerClient docker, CreateContainerParameters request, string runId, CancellationToken cancellationToken)
    {
        try
        {
            var id = (await docker.Containers.CreateContainerAsync(request, cancellationToken).ConfigureAwait(false)).ID;
            LogCreated(runId, id, options.Image);
            return id;
        }
        catch (Exception e) when (DockerEngine.IsUnreachable(e))
        {
            throw Unreachable(engine.Unreachable(e));
        }
        catch (DockerImageNotFoundException e)
        {
            throw new SandboxUnavailableException($"image {options.Image} not found: {DockerEngine.Message(e)}; build the agent image first", e);
        }
        catch (DockerApiException e)
        {
            throw new SandboxUnavailableException($"Docker could not create the container for run {runId}: {DockerEngine.Message(e)}", e);
        }
    }

    private async Task<SandboxExit> RunContainerAsync(
        IDockerClient docker,
        string id,
        SandboxSpec spec,
        byte[] stdin,
        Func<string, ValueTask> onStdoutLine,
        Action<string>? onStarted,
        CancellationToken cancellationToken)
    {
        using var timeout = spec.Timeout > TimeSpan.Zero && spec.Timeout != Timeout.InfiniteTimeSpan
            ? new CancellationTokenSource(spec.Timeout, timeProvider)
            : new CancellationTokenSource();
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var stderr = new TailBuffer(StandardErrorTailBytes);
        var started = false;
        int? exitCode = null;
        bool timedOut = false, cancelled = false;
        try
        {
            // Attached before the start, so no output is missed.
            using var attach = await docker.Containers.AttachContainerAsync(
                id, new ContainerAttachParameters { Stream = true, Stdin = true, Stdout = true, Stderr = true }, run.Token).ConfigureAwait(false);
            await docker.Containers.StartContainerAsync(id, new ContainerStartParameters(), run.Token).ConfigureAwait(false);
            started = true;
            onStarted?.Invoke(id);
            await ExchangeAsync(attach, stdin, onStdoutLine, stderr, run.Token).ConfigureAwait(false);
            exitCode = (int)(await docker.Containers.WaitContainerAsync(id, run.Token).ConfigureAwait(false)).StatusCode;
        }
        catch (OperationCanceledException) when (run.IsCancellationRequested)
        {
            cancelled = cancellationToken.IsCancellationRequested;
            timedOut = !cancelled;
            LogStopping(spec.RunId, id, timedOut ? "timed out" : "cancelled");
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await KillAsync(docker, id, cleanup.Token).ConfigureAwait(false);
            if (started)
            {
                exitCode = (int)(await docker.Containers.WaitContainerAsync(id, cleanup.Token).ConfigureAwait(false)).StatusCode;
            }
        }
        catch (Exception e) when (DockerEngine.IsUnreachable(e))
        {
            throw Unreachable(engine.Unreachable(e));
        }
        catch (DockerApiException e) when (!started)
        {
            throw new SandboxUnavailableException($"Docker could not start the container for run {spec.RunId}: {DockerEngine.Message(e)}", e);
        }

        var outOfMemory = false;
        using (var cleanup = new CancellationTokenSource(CleanupTimeout))
        {
            var state = (await docker.Containers.InspectContainerAsync(id, cleanup.Token).ConfigureAwait(false)).State;
            outOfMemory = state?.OOMKilled ?? false;
            exitCode = started ? exitCode ?? (int?)state?.ExitCode : null;
        }

        LogExited(spec.RunId, id, exitCode, timedOut, cancelled, outOfMemory);
        return new SandboxExit(exitCode, timedOut, cancelled, outOfMemory, stderr.ToString(), id);
    }

    /// <summary>Feeds stdin while reading the output: a large input is written only as fast as the
    /// command reads it, and a command that writes before it has read everything must not wait on us.</summary>
    private async Task ExchangeAsync(MultiplexedStream attach, byte[] stdin, Func<string, ValueTask> onStdoutLine, TailBuffer stderr, CancellationToken cancellationToken)
    {
        using var feeding = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writing = WriteStdinAsync(attach, stdin, feeding.Token);
        try
        {
            await PumpOutputAsync(attach, onStdoutLine, stderr, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The output has ended (so has the command) or the run is being stopped: a write still
            // waiting for a reader never gets one.
            await feeding.CancelAsync().ConfigureAwait(false);
            await writing.ConfigureAwait(false);
        }
    }

    /// <summary>The entrypoint reads KEY=VALUE lines up to an empty line, the command reads the rest;
    /// then stdin is closed so the command sees end of file. Never throws.</summary>
    private async Task WriteStdinAsync(MultiplexedStream attach, byte[] stdin, CancellationToken cancellationToken)
    {
        try
        {
            await attach.WriteAsync(stdin, 0, stdin.Length, cancellationToken).ConfigureAwait(false);
            attach.CloseWrite();
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The command may have exited without reading it all; its output still tells what happened.
            LogStdinClosed(e.Message);
        }
    }

    private static async Task PumpOutputAsync(MultiplexedStream attach, Func<string, ValueTask> onStdoutLine, TailBuffer stderr, CancellationToken cancellationToken)
    {
        var stdout = new Utf8LineSplitter();
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var read = await attach.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken).ConfigureAwait(false);
            if (read.EOF)
            {
                break;
            }

            var chunk = buffer.AsSpan(0, read.Count);
            if (read.Target == MultiplexedStream.TargetStream.StandardError)
            {
                stderr.Push(chunk);
                continue;
            }

            foreach (var line in stdout.Push(chunk))
            {
                await onStdoutLine(line).ConfigureAwait(false);
            }
        }

        if (stdout.Flush() is { } last)
        {
            await onStdoutLine(last).ConfigureAwait(false);
        }
    }

    /// <summary>Sends SIGKILL. A container already gone or no longer running is not an error.</summary>
    private static async Task KillAsync(IDockerClient docker, string id, CancellationToken cancellationToken)
    {
        try
        {
            await docker.Containers.KillContainerAsync(id, new ContainerKillParameters(), cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Conflict)
        {
        }
    }

    private async Task RemoveQuietlyAsync(IDockerClient docker, string id, string runId)
    {
        try
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await docker.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cleanup.Token).ConfigureAwait(false);
        }
        catch (DockerContainerNotFoundException)
        {
        }
        catch (Exception e) when (e is DockerApiException or OperationCanceledException || DockerEngine.IsUnreachable(e))
        {
            // The reaper removes it at the next start-up (it carries the instance's labels).
            LogRemoveFailed(e, runId, id);
        }
    }

    private static SandboxUnavailableException Unreachable(DockerUnavailableException e) =>
        new($"{e.Message}; start Docker or set runner to process", e);

    /// <summary>The secrets as KEY=VALUE lines and an empty line, then the input.</summary>
    private static byte[] StdinPayload(SandboxSpec spec)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in spec.Secrets)
        {
            if (!EnvName().IsMatch(key))
            {
                throw new ArgumentException($"secret name '{key}' is not a valid environment variable name", nameof(spec));
            }

            // A newline would end the secret early and smuggle the rest in as another line; the value itself is never echoed.
            if (value.Contains('\n') || value.Contains('\r') || value.Contains('\0'))
            {
                throw new ArgumentException($"secret {key} contains a line break or NUL", nameof(spec));
            }

            text.Append(key).Append('=').Append(value).Append('\n');
        }

        text.Append('\n').Append(spec.Input);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static (string? Uid, string? Gid) NumericOwner(string user)
    {
        var parts = user.Split(':');
        var uid = parts[0];
        var gid = parts.Length > 1 ? parts[1] : parts[0];
        return uid.All(char.IsAsciiDigit) && gid.All(char.IsAsciiDigit) && uid.Length > 0 && gid.Length > 0 ? (uid, gid) : (null, null);
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvName();

    /// <summary>This process's uid:gid, so files the agent writes to mounted project dirs belong to whoever runs Loop.</summary>
    private static readonly Lazy<string> DaemonUser = new(() => $"{Id("-u")}:{Id("-g")}");

    private static string Id(string flag)
    {
        using var process = Process.Start(new ProcessStartInfo("id", flag) { RedirectStandardOutput = true, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not run `id` to learn this process's uid and gid");
        var output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return process.ExitCode == 0 && output.Length > 0 && output.All(char.IsAsciiDigit)
            ? output
            : throw new InvalidOperationException($"`id {flag}` failed; set the container user explicitly");
    }

    [LoggerMessage(LogLevel.Debug, "Created container {ContainerId} for run {RunId} from {Image}")]
    private partial void LogCreated(string runId, string containerId, string image);

    [LoggerMessage(LogLevel.Information, "Run {RunId}: killing container {ContainerId}, {Reason}")]
    private partial void LogStopping(string runId, string containerId, string reason);

    [LoggerMessage(LogLevel.Information, "Run {RunId}: container {ContainerId} exited {ExitCode} (timed out {TimedOut}, cancelled {Cancelled}, out of memory {OutOfMemory})")]
    private partial void LogExited(string runId, string containerId, int? exitCode, bool timedOut, bool cancelled, bool outOfMemory);

    [LoggerMessage(LogLevel.Debug, "Container stdin closed early: {Reason}")]
    private partial void LogStdinClosed(string reason);

    [LoggerMessage(LogLevel.Warning, "Run {RunId}: could not remove container {ContainerId}")]
    private partial void LogRemoveFailed(Exception exception, string runId, string containerId);
}
