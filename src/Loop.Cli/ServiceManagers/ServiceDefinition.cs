namespace Loop.Cli.ServiceManagers;

/// <summary>What the background service runs: <paramref name="Command"/> is the program and its
/// arguments (e.g. ["/usr/local/bin/loop", "serve"]), <paramref name="Environment"/> the variables
/// it needs set, <paramref name="LogFile"/> where launchd sends its output (systemd uses the journal).</summary>
public sealed record ServiceDefinition(IReadOnlyList<string> Command, IReadOnlyDictionary<string, string> Environment, string LogFile);

/// <summary>The service as its manager sees it. <paramref name="Detail"/> is a short human
/// description such as "active (running)".</summary>
public sealed record ServiceState(bool Installed, bool Active, string Detail, int? Pid);

/// <summary>A service-manager step failed; the message says which and what it printed.</summary>
public sealed class ServiceManagerException(string message) : Exception(message);
