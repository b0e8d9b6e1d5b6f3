namespace Loop.Cli;

using System.CommandLine;
using Loop.Api;
using Loop.Client;
using Loop.Config;
using Loop.Domain;
using Loop.Hosting;
using Loop.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary><c>loop serve</c>: the daemon.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var silo = new Option<string?>("--silo") { Description = "Node settings file (default: <loop home>/silo.json when present)" };
        var command = new Command("serve", "Start the Loop daemon: the REST API, channel actors and agent runs") { silo };
        command.Aliases.Add("s");
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(silo), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? siloPath, CancellationToken cancellationToken)
    {
        if (NodeOptions(siloPath) is not { } node)
        {
            return 1;
        }
        var (options, loaded) = node;
        var (config, paths) = (options.Config, options.Paths);
        try
        {
            await using var host = LoopHost.Build(options, TimeProvider.System, logging => LoopLogging.Configure(logging, config),
                parts => parts.AddSingleton<IChatAdapterFactory>(sp => new Loop.Discord.DiscordAdapters(sp, TimeProvider.System))
                    .AddSingleton<IChatAdapterFactory>(sp => new Loop.Telegram.TelegramAdapters(sp, TimeProvider.System))
                    .AddSingleton<IChatAdapterFactory>(sp => new Loop.Email.EmailAdapters(sp, TimeProvider.System))
                    .AddSingleton<IChatAdapterFactory>(sp => new Loop.WhatsApp.WhatsAppAdapters(sp, TimeProvider.System)));
            var log = host.App.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Loop");
            var silo = siloPath ?? (File.Exists(paths.SiloFile) ? paths.SiloFile : null);
            log.LogInformation("Loop home {Home}; config {Config}{Silo}", paths.Home,
                File.Exists(paths.ConfigFile) ? paths.ConfigFile : $"{paths.ConfigFile} (not there: the defaults)",
                silo is null ? "" : $"; node settings {Path.GetFullPath(silo)}");
            foreach (var notice in loaded.Notices)
            {
                log.LogInformation("{Notice}", notice);
            }
            await host.StartAsync(cancellationToken);
            // A wildcard address (0.0.0.0 in a container, say) is no address to browse to: loopback is.
            log.LogInformation("Listening on http://{ApiAddr} and unix:{Socket}; the dashboard is at {Dashboard}/", config.ApiAddr, paths.DaemonSocket, LoopApiClient.BaseUrl(config.ApiAddr));
            await host.WaitForShutdownAsync(cancellationToken);
            return 0;
        }
        catch (Exception error) when (error is IOException or FormatException or InvalidOperationException or StoreUnavailableException)
        {
            Console.Error.WriteLine($"loop: cannot start: {error.Message}");
            return 1;
        }
    }

    /// <summary>The node as config.json, silo.json and the environment describe it (shared by
    /// <c>serve</c> and <c>migrate</c>); null, with the reason on stderr, when they cannot be used.</summary>
    internal static (LoopNodeOptions Options, ConfigLoadResult Loaded)? NodeOptions(string? siloPath)
    {
        try
        {
            if (siloPath is not null && !File.Exists(siloPath))
            {
                // A missing default silo.json means a single node; a file named on purpose must be there.
                throw new ConfigException($"{Path.GetFullPath(siloPath)}: no such file (given with --silo)");
            }
            var paths = LoopPaths.FromEnvironment();
            var loaded = ConfigLoader.Load(paths, Environment.GetEnvironmentVariables());
            var node = NodeSettings.Load(siloPath ?? (File.Exists(paths.SiloFile) ? paths.SiloFile : null), loaded.Config,
                Environment.GetEnvironmentVariable(NodeSettings.PostgresVariable));
            var config = loaded.Config with { DbPath = node.Store.Path ?? loaded.Config.DbPath, ApiAddr = node.ApiAddr };
            var options = new LoopNodeOptions(config, paths, node.NodeName)
            {
                ConfigWarnings = [.. loaded.Warnings, .. node.Warnings],
                Cluster = node.Cluster is { } cluster ? new ClusterNode(node.Store.ConnectionString!, cluster) : null,
            };
            return (options, loaded);
        }
        catch (ConfigException error)
        {
            Console.Error.WriteLine($"loop: {error.Message}");
            return null;
        }
    }
}
