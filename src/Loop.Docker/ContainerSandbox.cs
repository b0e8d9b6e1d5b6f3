namespace Loop.Docker;

using System.Globalization;
using System.Net;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Loop.Docker.Engine;
using Loop.Domain.Agents;
using Microsoft.Extensions.Logging;

/// <summary>Runs each agent command in a fresh, locked-down container that is removed afterwards.
/// Secrets travel over the container's stdin to the image's entrypoint, so they never appear in
/// the container's config, its command line or the image.</summary>
public sealed partial class ContainerSandbox(
    DockerEngineClient client,
    ContainerSandboxOptions options,
    TimeProvider timeProvider,
    ILogger<ContainerSandbox> logger) : ISandbox
{
    private const int StandardErrorTailBytes = 8 * 1024;
    private const long MiB = 1024 * 1024;
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(30);

    private readonly string _user = options.User ?? DaemonUser.Value;

    public string Kind => "docker";

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var stdin = StdinPayload(spec.Secrets, spec.Input);
        // Not cancelled by the caller: a create cut short on our side may still happen on the
        // engine's, and then we would never learn the id of the container to remove.
        using var creating = new CancellationTokenSource(CleanupTimeout);
        var id = await CreateAsync(spec, creating.Token).ConfigureAwait(false);
        try
        {
            return await RunContainerAsync(id, spec, stdin, onStdoutLine, onStarted, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await RemoveQuietlyAsync(id, spec.RunId).ConfigureAwait(false);
        }
    }

    internal ContainerCreateRequest CreateRequest(SandboxSpec spec)
    {
        var user = UserOf(spec);
        var (uid, gid) = NumericOwner(user);
        var size = $"size={options.TmpfsSizeMb}m";
        // HOME belongs to the user alone; when the user is a name we cannot own it, so open it up.
        var homeOwner = uid is null ? "mode=1777" : $"uid={uid},gid={gid},mode=0700";
        return new ContainerCreateRequest
        {
            Image = options.Image,
            Cmd = spec.Command,
            WorkingDir = spec.WorkDir,
            User = user,
            Env = [$"HOME={options.HomeDir}"],
            Labels = spec.Labels,
            AttachStdin = true,
            AttachStdout = true,
            AttachStderr = true,
            OpenStdin = true,
            StdinOnce = true,
            Tty = false,
            HostConfig = new ContainerHostConfig
            {
                Mounts = spec.Mounts.Select(m => new ContainerMount("bind", m.HostPath, m.ContainerPath, m.ReadOnly)).ToList(),
                Memory = options.MemoryMb * MiB,
                MemorySwap = options.MemoryMb * MiB,
                NanoCpus = (long)Math.Round(options.Cpus * 1e9),
                PidsLimit = options.PidsLimit,
                ReadonlyRootfs = true,
                Tmpfs = MaskedTmpfs(spec, new Dictionary<string, string>
                {
                    ["/tmp"] = $"rw,exec,nosuid,nodev,{size},mode=1777",
                    [options.HomeDir] = $"rw,exec,nosuid,nodev,{size},{homeOwner}",
                }),
                CapDrop = ["ALL"],
                SecurityOpt = ["no-new-privileges"],
                GroupAdd = spec.SupplementaryGroups.Select(g => g.ToString(CultureInfo.InvariantCulture)).ToList(),
            },
        };
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

    private async Task<string> CreateAsync(SandboxSpec spec, CancellationToken cancellationToken)
    {
        try
        {
            var id = await client.CreateContainerAsync(CreateRequest(spec), name: null, cancellationToken).ConfigureAwait(false);
            LogCreated(spec.RunId, id, options.Image);
            return id;
        }
        catch (DockerUnavailableException e)
        {
            throw Unreachable(e);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new SandboxUnavailableException($"image {options.Image} not found: {e.Message}; build the agent image first", e);
        }
        catch (DockerApiException e)
        {
            throw new SandboxUnavailableException($"Docker could not create the container for run {spec.RunId}: {e.Message}", e);
        }
    }

    private async Task<SandboxExit> RunContainerAsync(
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
            using var attach = await client.AttachAsync(id, run.Token).ConfigureAwait(false);
            await client.StartAsync(id, run.Token).ConfigureAwait(false);
            started = true;
            onStarted?.Invoke(id);
            // Written while the output is read: a large prompt must not wait on a container that
            // waits for us to read what it printed.
            var feeding = SendStdinAsync(attach, stdin, run.Token);
            await PumpOutputAsync(attach, onStdoutLine, stderr, run.Token).ConfigureAwait(false);
            await feeding.ConfigureAwait(false);
            exitCode = await client.WaitAsync(id, run.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (run.IsCancellationRequested)
        {
            cancelled = cancellationToken.IsCancellationRequested;
            timedOut = !cancelled;
            LogStopping(spec.RunId, id, timedOut ? "timed out" : "cancelled");
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await client.KillAsync(id, cleanup.Token).ConfigureAwait(false);
            if (started)
            {
                exitCode = await client.WaitAsync(id, cleanup.Token).ConfigureAwait(false);
            }
        }
        catch (DockerUnavailableException e)
        {
            throw Unreachable(e);
        }
        catch (DockerApiException e) when (!started)
        {
            throw new SandboxUnavailableException($"Docker could not start the container for run {spec.RunId}: {e.Message}", e);
        }

        var outOfMemory = false;
        using (var cleanup = new CancellationTokenSource(CleanupTimeout))
        {
            var state = (await client.InspectAsync(id, cleanup.Token).ConfigureAwait(false)).State;
            outOfMemory = state.OOMKilled;
            exitCode = started ? exitCode ?? state.ExitCode : null;
        }

        LogExited(spec.RunId, id, exitCode, timedOut, cancelled, outOfMemory);
        return new SandboxExit(exitCode, timedOut, cancelled, outOfMemory, stderr.ToString(), id);
    }

    /// <summary>The entrypoint reads KEY=VALUE lines up to an empty line and leaves the rest (the
    /// prompt) to the command; then stdin is closed so the command sees end of file. Never throws:
    /// a container that is gone or a run that is stopped is reported by the output side.</summary>
    private async Task SendStdinAsync(DockerAttachStream attach, byte[] stdin, CancellationToken cancellationToken)
    {
        try
        {
            await attach.WriteStdinAsync(stdin, cancellationToken).ConfigureAwait(false);
            attach.CloseStdin();
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The container may already have exited without reading stdin; its output still tells what happened.
            LogStdinClosed(e.Message);
        }
    }

    private static async Task PumpOutputAsync(DockerAttachStream attach, Func<string, ValueTask> onStdoutLine, TailBuffer stderr, CancellationToken cancellationToken)
    {
        var stdout = new Utf8LineSplitter();
        while (await attach.ReadFrameAsync(cancellationToken).ConfigureAwait(false) is { } frame)
        {
            if (frame.Stream == AttachStreamKind.Stderr)
            {
                stderr.Push(frame.Payload.Span);
                continue;
            }

            foreach (var line in stdout.Push(frame.Payload.Span))
            {
                await onStdoutLine(line).ConfigureAwait(false);
            }
        }

        if (stdout.Flush() is { } last)
        {
            await onStdoutLine(last).ConfigureAwait(false);
        }
    }

    private async Task RemoveQuietlyAsync(string id, string runId)
    {
        try
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await client.RemoveAsync(id, force: true, cleanup.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DockerApiException or DockerUnavailableException or OperationCanceledException)
        {
            // The reaper removes it at the next start-up (it carries the instance's labels).
            LogRemoveFailed(e, runId, id);
        }
    }

    private SandboxUnavailableException Unreachable(DockerUnavailableException e) =>
        new($"{e.Message}; start Docker or set runner to process", e);

    /// <summary>The secrets as the entrypoint reads them, then the command's own input as UTF-8.</summary>
    private static byte[] StdinPayload(IReadOnlyDictionary<string, string> secrets, string input)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in secrets)
        {
            if (!EnvName().IsMatch(key))
            {
                throw new ArgumentException($"secret name '{key}' is not a valid environment variable name", nameof(secrets));
            }

            // A newline would end the secret early and smuggle the rest in as another line; the value itself is never echoed.
            if (value.Contains('\n') || value.Contains('\r') || value.Contains('\0'))
            {
                throw new ArgumentException($"secret {key} contains a line break or NUL", nameof(secrets));
            }

            text.Append(key).Append('=').Append(value).Append('\n');
        }

        text.Append('\n').Append(input);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>The run's own user, else the configured one, else the daemon's. Never root: a root
    /// agent could leave setuid-root files in the project for any user of the host.</summary>
    private string UserOf(SandboxSpec spec)
    {
        var user = spec.User ?? _user;
        var name = user.Split(':')[0];
        if (name is "0" or "root")
        {
            throw new SandboxUnavailableException(
                $"run {spec.RunId} would run as root ({user}): agents never run as root; set container_user in config.json (like \"1000:1000\")");
        }
        return user;
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
