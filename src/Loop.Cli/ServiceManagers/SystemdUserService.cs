namespace Loop.Cli.ServiceManagers;

/// <summary>Loop as a systemd user unit: ~/.config/systemd/user/loop.service, managed with
/// <c>systemctl --user</c>. Needs the user's systemd instance (a user bus), which root shells,
/// containers and CI machines often lack.</summary>
public sealed class SystemdUserService(string userHome, ICommandRunner runner) : IServiceManager
{
    private const string Unit = ServiceFiles.SystemdUnitName;

    public string Kind => "systemd user unit";

    public string DefinitionFile { get; } = Path.Combine(userHome, ".config", "systemd", "user", Unit);

    public string LogsHint => $"journalctl --user -u {Unit}";

    public async Task<string?> UnavailableReasonAsync(CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync("systemctl", ["--user", "show-environment"], cancellationToken);
        return result switch
        {
            { Succeeded: true } => null,
            { ExitCode: ProcessCommandRunner.NotFound } => "systemctl is not installed, so there is no systemd to run the service",
            _ => $"systemd user services are not available here ('systemctl --user' says: {result.OneLine})",
        };
    }

    public async Task InstallAndStartAsync(ServiceDefinition definition, CancellationToken cancellationToken)
    {
        var wasActive = (await GetStateAsync(cancellationToken)).Active;
        Directory.CreateDirectory(Path.GetDirectoryName(DefinitionFile)!);
        AtomicFile.Write(DefinitionFile, ServiceFiles.SystemdUnit(definition), AtomicFile.ReadableMode);
        await SystemctlAsync(cancellationToken, "daemon-reload");
        await SystemctlAsync(cancellationToken, "enable", "--now", Unit);
        if (wasActive)
        {
            // `enable --now` leaves a running service alone; the unit may name a new binary.
            await SystemctlAsync(cancellationToken, "restart", Unit);
        }
    }

    public async Task<bool> StopAndRemoveAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(DefinitionFile))
        {
            return false;
        }

        await SystemctlAsync(cancellationToken, "disable", "--now", Unit);
        File.Delete(DefinitionFile);
        await SystemctlAsync(cancellationToken, "daemon-reload");
        return true;
    }

    public async Task<ServiceState> GetStateAsync(CancellationToken cancellationToken)
    {
        var installed = File.Exists(DefinitionFile);
        var result = await runner.RunAsync("systemctl", ["--user", "show", Unit, "--property=ActiveState,SubState,MainPID"], cancellationToken);
        if (!result.Succeeded)
        {
            return new ServiceState(installed, false, $"unknown ({result.OneLine})", null);
        }

        var properties = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2))
            .Where(pair => pair.Length == 2)
            .ToDictionary(pair => pair[0], pair => pair[1]);
        var active = properties.GetValueOrDefault("ActiveState", "unknown");
        var sub = properties.GetValueOrDefault("SubState", "unknown");
        int? pid = int.TryParse(properties.GetValueOrDefault("MainPID"), out var mainPid) && mainPid > 0 ? mainPid : null;
        return new ServiceState(installed, active == "active", $"{active} ({sub})", pid);
    }

    private async Task SystemctlAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        var result = await runner.RunAsync("systemctl", ["--user", .. arguments], cancellationToken);
        if (!result.Succeeded)
        {
            throw new ServiceManagerException($"'systemctl --user {string.Join(' ', arguments)}' failed (exit {result.ExitCode}): {result.OneLine}");
        }
    }
}
