namespace Loop.Cli.ServiceManagers;

using System.ComponentModel;
using System.Diagnostics;

/// <summary>What a service-manager command printed and how it ended.</summary>
public sealed record CommandResult(int ExitCode, string Output)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>The output on one line, for an error message.</summary>
    public string OneLine => string.Join(" ", Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}

/// <summary>Runs the service manager's programs (systemctl, launchctl); tests substitute a scripted one.</summary>
public interface ICommandRunner
{
    Task<CommandResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken);
}

/// <summary>Runs a program and collects stdout and stderr together. A program that is not
/// installed gives exit code 127, as a shell would, rather than an exception.</summary>
public sealed class ProcessCommandRunner : ICommandRunner
{
    public const int NotFound = 127;

    public async Task<CommandResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new Win32Exception($"{program} did not start");
        }
        catch (Win32Exception)
        {
            return new CommandResult(NotFound, $"{program}: command not found");
        }

        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            return new CommandResult(process.ExitCode, (await stdout + await stderr).Trim());
        }
    }
}
