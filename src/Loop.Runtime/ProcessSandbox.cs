namespace Loop.Runtime;

using System.Diagnostics;
using System.Text;
using Loop.Domain.Agents;
using Microsoft.Extensions.Logging;

/// <summary>
/// Runs the agent command directly on the host, for machines without Docker. It gives no
/// isolation at all: the agent sees everything the daemon's user can see. Mounts are ignored
/// (the host paths are already there); secrets go into the child's environment.
/// </summary>
public sealed class ProcessSandbox(TimeProvider time, ILogger<ProcessSandbox> logger) : ISandbox
{
    private const int StandardErrorTailLimit = 8 * 1024;

    public string Kind => "process";

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var start = new ProcessStartInfo
        {
            FileName = spec.Command[0],
            WorkingDirectory = spec.WorkDir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in spec.Command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in spec.Secrets)
        {
            start.Environment[name] = value;
        }

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception error) when (error is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new SandboxUnavailableException($"cannot start '{spec.Command[0]}' on the host: {error.Message}; set claude_bin_path to the claude executable", error);
        }
        var id = $"pid-{process.Id}";
        logger.LogWarning("Run {RunId} runs as host process {Pid} without isolation (runner: process)", spec.RunId, process.Id);
        onStarted?.Invoke(id);
        // Written while the output is read, so a large prompt cannot wait on a child that waits on us.
        var feeding = FeedAsync(process.StandardInput, spec.Input);

        var stderr = new StringBuilder();
        var stderrPump = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int read;
            while ((read = await process.StandardError.ReadAsync(buffer, CancellationToken.None)) > 0)
            {
                lock (stderr)
                {
                    stderr.Append(buffer, 0, read);
                    if (stderr.Length > StandardErrorTailLimit)
                    {
                        stderr.Remove(0, stderr.Length - StandardErrorTailLimit);
                    }
                }
            }
        }, CancellationToken.None);

        using var timeout = new CancellationTokenSource(spec.Timeout, time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(stop.Token) is { } line)
            {
                await onStdoutLine(line);
            }
            await process.WaitForExitAsync(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }
        await stderrPump;
        await feeding;

        var timedOut = timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested;
        var cancelled = cancellationToken.IsCancellationRequested;
        string tail;
        lock (stderr)
        {
            tail = stderr.ToString();
        }
        return new SandboxExit(timedOut || cancelled ? null : process.ExitCode, timedOut, cancelled, OutOfMemory: false, tail, id);
    }

    /// <summary>Writes the command's input, then closes its stdin so it sees end of file. A child that
    /// exits without reading it all is not an error here: its exit code tells what happened.</summary>
    private static async Task FeedAsync(StreamWriter stdin, string input)
    {
        try
        {
            await stdin.WriteAsync(input);
            await stdin.FlushAsync();
        }
        catch (IOException)
        {
        }
        finally
        {
            try
            {
                stdin.Close();
            }
            catch (IOException)
            {
            }
        }
    }
}
