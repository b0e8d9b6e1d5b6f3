namespace Loop.Cli.ServiceManagers;

using System.Text.RegularExpressions;

/// <summary>Loop as a launchd agent of the logged-in user on macOS:
/// ~/Library/LaunchAgents/dev.loop.daemon.plist, loaded into the gui/&lt;uid&gt; domain.</summary>
public sealed partial class LaunchdAgent(string userHome, string logFile, ICommandRunner runner) : IServiceManager
{
    private const string Label = ServiceFiles.LaunchdLabel;
    private string? _domain;

    public string Kind => "launchd agent";

    public string DefinitionFile { get; } = Path.Combine(userHome, "Library", "LaunchAgents", Label + ".plist");

    public string LogsHint => $"tail -f {logFile}";

    public async Task<string?> UnavailableReasonAsync(CancellationToken cancellationToken)
    {
        var domain = await DomainAsync(cancellationToken);
        if (domain is null)
        {
            return "the user id could not be read ('id -u' failed)";
        }

        var result = await runner.RunAsync("launchctl", ["print", domain], cancellationToken);
        return result switch
        {
            { Succeeded: true } => null,
            { ExitCode: ProcessCommandRunner.NotFound } => "launchctl is not installed, so there is no launchd to run the agent",
            _ => $"the launchd domain {domain} is not available (log in to the desktop session; launchctl says: {result.OneLine})",
        };
    }

    public async Task InstallAndStartAsync(ServiceDefinition definition, CancellationToken cancellationToken)
    {
        var domain = await RequiredDomainAsync(cancellationToken);
        if (await IsLoadedAsync(domain, cancellationToken))
        {
            // bootstrap refuses a loaded label; unload it so the new plist takes effect.
            await LaunchctlAsync(cancellationToken, "bootout", $"{domain}/{Label}");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(DefinitionFile)!);
        Directory.CreateDirectory(Path.GetDirectoryName(definition.LogFile)!);
        AtomicFile.Write(DefinitionFile, ServiceFiles.LaunchdPlist(definition), AtomicFile.ReadableMode);
        await LaunchctlAsync(cancellationToken, "bootstrap", domain, DefinitionFile);
    }

    public async Task<bool> StopAndRemoveAsync(CancellationToken cancellationToken)
    {
        var domain = await RequiredDomainAsync(cancellationToken);
        var loaded = await IsLoadedAsync(domain, cancellationToken);
        if (!loaded && !File.Exists(DefinitionFile))
        {
            return false;
        }

        if (loaded)
        {
            await LaunchctlAsync(cancellationToken, "bootout", $"{domain}/{Label}");
        }

        File.Delete(DefinitionFile);
        return true;
    }

    public async Task<ServiceState> GetStateAsync(CancellationToken cancellationToken)
    {
        var installed = File.Exists(DefinitionFile);
        var domain = await RequiredDomainAsync(cancellationToken);
        var result = await runner.RunAsync("launchctl", ["print", $"{domain}/{Label}"], cancellationToken);
        if (!result.Succeeded)
        {
            return new ServiceState(installed, false, "not loaded", null);
        }

        var state = StateLine().Match(result.Output) is { Success: true } s ? s.Groups[1].Value : "unknown";
        int? pid = PidLine().Match(result.Output) is { Success: true } p && int.TryParse(p.Groups[1].Value, out var parsed) ? parsed : null;
        return new ServiceState(installed, state == "running", $"loaded ({state})", pid);
    }

    private async Task<bool> IsLoadedAsync(string domain, CancellationToken cancellationToken) =>
        (await runner.RunAsync("launchctl", ["print", $"{domain}/{Label}"], cancellationToken)).Succeeded;

    private async Task<string?> DomainAsync(CancellationToken cancellationToken)
    {
        if (_domain is null)
        {
            var id = await runner.RunAsync("id", ["-u"], cancellationToken);
            _domain = id.Succeeded && int.TryParse(id.Output.Trim(), out var uid) ? $"gui/{uid}" : null;
        }
        return _domain;
    }

    private async Task<string> RequiredDomainAsync(CancellationToken cancellationToken) =>
        await DomainAsync(cancellationToken) ?? throw new ServiceManagerException("the user id could not be read ('id -u' failed)");

    private async Task LaunchctlAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        var result = await runner.RunAsync("launchctl", arguments, cancellationToken);
        if (!result.Succeeded)
        {
            throw new ServiceManagerException($"'launchctl {string.Join(' ', arguments)}' failed (exit {result.ExitCode}): {result.OneLine}");
        }
    }

    [GeneratedRegex(@"^\s*state = (\S+)", RegexOptions.Multiline)]
    private static partial Regex StateLine();

    [GeneratedRegex(@"^\s*pid = (\d+)", RegexOptions.Multiline)]
    private static partial Regex PidLine();
}
