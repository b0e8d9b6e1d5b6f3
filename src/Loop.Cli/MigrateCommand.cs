namespace Loop.Cli;

using System.CommandLine;
using Loop.Domain;
using Loop.Store;

/// <summary><c>loop migrate</c>: creates or upgrades the store's schema (Loop's tables and the ones
/// Orleans keeps there) without starting a node. Every node also does it as it starts, one at a time.</summary>
public static class MigrateCommand
{
    public static Command Create()
    {
        var silo = new Option<string?>("--silo") { Description = "Node settings file (default: <loop home>/silo.json when present)" };
        var command = new Command("migrate", "Create or upgrade the store's tables (SQLite, or a cluster's PostgreSQL database)") { silo };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(silo), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? siloPath, CancellationToken cancellationToken)
    {
        if (ServeCommand.NodeOptions(siloPath) is not { Options: var options })
        {
            return 1;
        }
        await using SqlLoopStore store = options.Cluster is { } cluster
            ? new PostgresLoopStore(cluster.PostgresConnectionString, TimeProvider.System)
            : new SqliteLoopStore(options.Config.DbPath, TimeProvider.System);
        try
        {
            Console.WriteLine($"Migrating {store.Location} ...");
            var version = await store.MigrateAsync(cancellationToken);
            Console.WriteLine($"{store.Location} is at schema version {version}.");
            return 0;
        }
        catch (StoreUnavailableException error)
        {
            Console.Error.WriteLine($"loop: cannot migrate: {error.Message}");
            return 1;
        }
    }
}
