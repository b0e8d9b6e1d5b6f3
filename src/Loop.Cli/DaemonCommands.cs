namespace Loop.Cli;

using System.CommandLine;
using Loop.Cli.ServiceManagers;
using Loop.Client;
using Loop.Config;

/// <summary><c>loop daemon:start|stop|status</c>: Loop as a background service of the user's
/// session (systemd user unit on Linux, launchd agent on macOS).</summary>
public static class DaemonCommands
{
    public static void AddTo(Command root)
    {
        root.Subcommands.Add(Create("daemon:start", "Install Loop as a background service and start it (systemd user unit or launchd agent)", ["d:start", "up"], StartAsync));
        root.Subcommands.Add(Create("daemon:stop", "Stop the background service and uninstall it", ["d:stop", "down"], StopAsync));
        root.Subcommands.Add(Create("daemon:status", "Show whether the service is installed and running, and the daemon's health", ["d:status"], StatusAsync));
    }

    private static Command Create(string name, string description, string[] aliases, Func<DaemonContext, CancellationToken, Task<int>> run)
    {
        var command = new Command(name, description);
        foreach (var alias in aliases)
        {
            command.Aliases.Add(alias);
        }
        command.SetAction((_, cancellationToken) => run(DaemonContext.FromEnvironment(), cancellationToken));
        return command;
    }

    private static async Task<int> StartAsync(DaemonContext context, CancellationToken cancellationToken)
    {
        if (await context.UnavailableReasonAsync(cancellationToken) is { } reason)
        {
            Console.Error.WriteLine($"loop: cannot install the daemon: {reason}.");
            Console.Error.WriteLine(context.RunByHandAdvice);
            return 1;
        }

        var manager = context.Manager!;
        string baseUrl;
        try
        {
            // The service would only crash-loop on a broken config: say so now.
            baseUrl = LoopApiClient.ConfiguredApiUrl(context.Paths);
        }
        catch (ConfigException error)
        {
            Console.Error.WriteLine($"loop: {error.Message}");
            return 1;
        }

        var before = await manager.GetStateAsync(cancellationToken);
        if (!before.Active && await DaemonProbe.ProbeAsync(baseUrl, context.Paths.DaemonSocket, LoopApiClient.ReadLocalToken(context.Paths), TimeSpan.FromSeconds(1), cancellationToken) is { Answered: true } running)
        {
            Console.Error.WriteLine($"loop: a Loop daemon not run by the service manager already answers at {baseUrl} (pid {running.Pid?.ToString() ?? "unknown"}).");
            Console.Error.WriteLine("Stop it first (Ctrl-C in its terminal, or kill its pid), then run 'loop daemon:start' again.");
            return 1;
        }

        try
        {
            await manager.InstallAndStartAsync(context.Definition(), cancellationToken);
        }
        catch (Exception error) when (error is ServiceManagerException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"loop: cannot start the daemon: {error.Message}");
            return 1;
        }

        Console.WriteLine($"{(before.Active ? "Restarted" : "Started")} Loop as a {manager.Kind}: {manager.DefinitionFile}");
        var probe = await DaemonProbe.WaitAsync(baseUrl, context.Paths, TimeSpan.FromSeconds(15), cancellationToken);
        if (probe.Answered)
        {
            Console.WriteLine($"Loop is up at {baseUrl} (pid {probe.Pid?.ToString() ?? "unknown"}, status {probe.Health!["status"]}).");
        }
        else
        {
            // The first start builds the agent image, which can take minutes.
            Console.WriteLine($"Loop does not answer yet ({probe.Error}); the first start builds the agent image, which takes a while.");
            Console.WriteLine($"Check with 'loop daemon:status'; logs: {manager.LogsHint}");
        }
        return 0;
    }

    private static async Task<int> StopAsync(DaemonContext context, CancellationToken cancellationToken)
    {
        if (await context.UnavailableReasonAsync(cancellationToken) is { } reason)
        {
            Console.Error.WriteLine($"loop: there is no Loop service to stop: {reason}.");
            var probe = await context.ProbeAsync(cancellationToken);
            Console.Error.WriteLine(probe.Answered
                ? $"A Loop daemon started by hand answers at {probe.Url}: stop it with Ctrl-C in its terminal{(probe.Pid is { } pid ? $" or 'kill {pid}'" : "")}."
                : "If you started 'loop serve' by hand, stop it with Ctrl-C in its terminal.");
            return 1;
        }

        var manager = context.Manager!;
        try
        {
            if (!await manager.StopAndRemoveAsync(cancellationToken))
            {
                Console.WriteLine($"The Loop service is not installed ({manager.DefinitionFile} does not exist): nothing to stop.");
                return 0;
            }
        }
        catch (Exception error) when (error is ServiceManagerException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"loop: cannot stop the daemon: {error.Message}");
            return 1;
        }

        Console.WriteLine($"Stopped the Loop service and removed {manager.DefinitionFile}.");
        return 0;
    }

    private static async Task<int> StatusAsync(DaemonContext context, CancellationToken cancellationToken)
    {
        Console.WriteLine("Service");
        if (await context.UnavailableReasonAsync(cancellationToken) is { } reason)
        {
            Console.WriteLine($"  {"manager:",-10}none ({reason})");
        }
        else
        {
            var manager = context.Manager!;
            var state = await manager.GetStateAsync(cancellationToken);
            Console.WriteLine($"  {"manager:",-10}{manager.Kind} {manager.DefinitionFile}");
            Console.WriteLine($"  {"state:",-10}{(state.Installed ? "installed" : "not installed")}, {(state.Active ? "running" : "not running")}: {state.Detail}{(state.Pid is { } pid ? $", pid {pid}" : "")}");
            Console.WriteLine($"  {"logs:",-10}{manager.LogsHint}");
        }

        var probe = await context.ProbeAsync(cancellationToken);
        Console.WriteLine();
        if (!probe.Answered)
        {
            Console.WriteLine("Daemon");
            Console.WriteLine($"  {"api:",-10}{probe.Error}");
            Console.WriteLine("  Start it with 'loop serve' (in a terminal) or 'loop daemon:start' (in the background).");
            return 1;
        }

        Console.WriteLine($"Daemon at {probe.Url}");
        foreach (var line in DaemonProbe.Describe(probe.Health!, probe.Pid))
        {
            Console.WriteLine(line);
        }
        return 0;
    }

    /// <summary>This Loop home, the machine's service manager and how to reach the daemon.</summary>
    private sealed class DaemonContext(LoopPaths paths, IServiceManager? manager)
    {
        public LoopPaths Paths { get; } = paths;

        public IServiceManager? Manager { get; } = manager;

        public string LogFile => DaemonLogFile(Paths);

        public string RunByHandAdvice
        {
            get
            {
                var home = Environment.GetEnvironmentVariable("LOOP_HOME") is { Length: > 0 } ? $"LOOP_HOME={Paths.Home} " : "";
                return "Run Loop by hand instead:\n"
                    + $"  {home}loop serve    (in the foreground; Ctrl-C stops it)\n"
                    + $"  {home}nohup loop serve >> {LogFile} 2>&1 &    (in the background; or use tmux or screen)";
            }
        }

        public static DaemonContext FromEnvironment()
        {
            var paths = LoopPaths.FromEnvironment();
            return new DaemonContext(paths, ServiceManager.ForThisMachine(paths.UserHome, DaemonLogFile(paths), new ProcessCommandRunner()));
        }

        public async Task<string?> UnavailableReasonAsync(CancellationToken cancellationToken) =>
            Manager is null
                ? $"{Environment.OSVersion.Platform} has neither systemd nor launchd"
                : await Manager.UnavailableReasonAsync(cancellationToken);

        public async Task<DaemonProbeResult> ProbeAsync(CancellationToken cancellationToken)
        {
            string baseUrl;
            try
            {
                baseUrl = LoopApiClient.ConfiguredApiUrl(Paths);
            }
            catch (ConfigException error)
            {
                return new DaemonProbeResult("(unknown)", null, null, $"the API address is unknown: {error.Message}");
            }
            return await DaemonProbe.ProbeAsync(baseUrl, Paths.DaemonSocket, LoopApiClient.ReadLocalToken(Paths), TimeSpan.FromSeconds(3), cancellationToken);
        }

        private static string DaemonLogFile(LoopPaths paths) => Path.Combine(paths.Home, "daemon.log");

        /// <summary>This same loop binary running <c>serve</c>, with the variables that locate its home and engine.</summary>
        public ServiceDefinition Definition()
        {
            var environment = new Dictionary<string, string>();
            foreach (var name in new[] { "LOOP_HOME", "PATH", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH" })
            {
                if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value)
                {
                    environment[name] = name == "LOOP_HOME" ? Paths.Home : value;
                }
            }
            return new ServiceDefinition([.. LoopExecutable.Command, "serve"], environment, LogFile);
        }
    }
}
