namespace Loop.Cli.ServiceManagers;

/// <summary>Installs Loop as a background service of the user's session.</summary>
public interface IServiceManager
{
    /// <summary>What kind of service this is, e.g. "systemd user unit".</summary>
    string Kind { get; }

    /// <summary>The unit or plist file that defines the service.</summary>
    string DefinitionFile { get; }

    /// <summary>How to read the service's logs, as a command line to show the user.</summary>
    string LogsHint { get; }

    /// <summary>Null when the manager can be used here, else why not (in a few words).</summary>
    Task<string?> UnavailableReasonAsync(CancellationToken cancellationToken);

    /// <summary>Writes the definition file and starts the service (restarting it when it was running).</summary>
    /// <exception cref="ServiceManagerException">A step failed.</exception>
    Task InstallAndStartAsync(ServiceDefinition definition, CancellationToken cancellationToken);

    /// <summary>Stops the service and removes its definition; false when it was not installed.</summary>
    /// <exception cref="ServiceManagerException">A step failed.</exception>
    Task<bool> StopAndRemoveAsync(CancellationToken cancellationToken);

    Task<ServiceState> GetStateAsync(CancellationToken cancellationToken);
}

public static class ServiceManager
{
    /// <summary>systemd on Linux, launchd on macOS, null elsewhere. <paramref name="logFile"/>
    /// receives the daemon's output where the manager has no journal of its own (launchd).</summary>
    public static IServiceManager? ForThisMachine(string userHome, string logFile, ICommandRunner runner)
    {
        if (OperatingSystem.IsLinux())
        {
            return new SystemdUserService(userHome, runner);
        }

        if (OperatingSystem.IsMacOS())
        {
            return new LaunchdAgent(userHome, logFile, runner);
        }

        return null;
    }
}
