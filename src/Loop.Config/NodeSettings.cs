using System.Text.Json;

namespace Loop.Config;

public enum StoreKind
{
    /// <summary>One node, SQLite embedded.</summary>
    Sqlite,

    /// <summary>Several nodes sharing one PostgreSQL database.</summary>
    Postgres,
}

/// <summary>Where the node keeps its state. <see cref="Path"/> is set for SQLite,
/// <see cref="ConnectionString"/> for PostgreSQL.</summary>
public sealed record StoreSettings(StoreKind Kind, string? Path, string? ConnectionString)
{
    // The connection string usually carries a password.
    public override string ToString() =>
        $"StoreSettings {{ Kind = {Kind}, Path = {Path ?? "(none)"}, ConnectionString = {LoopConfig.Mask(ConnectionString)} }}";
}

/// <summary>How this node joins the others of its cluster: the port silos talk on, the port
/// Orleans clients connect to (0: none), and the address the others reach it at (null: this
/// machine's own, as its host name resolves).</summary>
public sealed record ClusterSettings(int SiloPort, int GatewayPort, string? AdvertisedAddress)
{
    public const int DefaultSiloPort = 11111;
    public const int DefaultGatewayPort = 30000;

    public static readonly ClusterSettings Default = new(DefaultSiloPort, DefaultGatewayPort, null);
}

/// <summary>Settings of this node (silo.json): its name, its store, its API address and, on a
/// PostgreSQL store, its place in the cluster. Values present in silo.json win over config.json's
/// db_path and api_addr.</summary>
public sealed record NodeSettings(string NodeName, StoreSettings Store, string ApiAddr, IReadOnlyList<string> Warnings)
{
    /// <summary>The environment variable that gives a PostgreSQL store its connection string, so no
    /// password need sit in silo.json. It wins over store.connection_string.</summary>
    public const string PostgresVariable = "LOOP_POSTGRES";

    private const string Example = """{ "node_name": "node-1", "store": { "kind": "postgres", "connection_string": "Host=db;Database=loop;Username=loop" }, "api_addr": "127.0.0.1:8222", "cluster": { "silo_port": 11111, "gateway_port": 30000, "advertised_address": "10.0.0.5" } }""";

    /// <summary>Set on a PostgreSQL store: this node is one of a cluster (perhaps of one).</summary>
    public ClusterSettings? Cluster { get; init; }

    /// <summary>Reads silo.json at <paramref name="path"/>; a null path or a missing file gives
    /// settings derived from <paramref name="config"/> (SQLite at db_path, api_addr, the machine name).
    /// <paramref name="postgres"/> is <see cref="PostgresVariable"/>'s value, if set.</summary>
    /// <exception cref="ConfigException">silo.json is not valid JSON or holds an unusable value.</exception>
    public static NodeSettings Load(string? path, LoopConfig config, string? postgres = null)
    {
        var settings = new NodeSettings(Environment.MachineName, new StoreSettings(StoreKind.Sqlite, config.DbPath, null), config.ApiAddr, []);
        if (path is null)
        {
            return settings;
        }

        var file = System.IO.Path.GetFullPath(path);
        if (ConfigJson.ReadObjectFile(file) is not { } root)
        {
            return settings;
        }

        var warnings = new List<string>();
        foreach (var property in root.EnumerateObject())
        {
            switch (property.Name)
            {
                case "node_name":
                    settings = settings with { NodeName = RequiredText(property.Value, "node_name", file) };
                    break;
                case "api_addr":
                    var address = RequiredText(property.Value, "api_addr", file);
                    if (!ApiAddress.TryParse(address, out _, out var problem))
                    {
                        throw new ConfigException($"{file}: 'api_addr' {problem}, e.g. \"api_addr\": \"127.0.0.1:8222\" (found \"{address}\")");
                    }

                    settings = settings with { ApiAddr = address };
                    break;
                case "store":
                    settings = settings with { Store = ReadStore(property.Value, config, file, postgres, warnings) };
                    break;
                case "cluster":
                    settings = settings with { Cluster = ReadCluster(property.Value, file, warnings) };
                    break;
                default:
                    warnings.Add(ConfigJson.UnknownKey(property.Name, file));
                    break;
            }
        }

        return settings.Store.Kind switch
        {
            StoreKind.Postgres => settings with { Cluster = settings.Cluster ?? ClusterSettings.Default, Warnings = warnings },
            _ when settings.Cluster is not null => throw new ConfigException(
                $"{file}: a cluster keeps its state in PostgreSQL, which every node shares: add \"store\": {{ \"kind\": \"postgres\", ... }}, e.g. {Example}"),
            _ => settings with { Warnings = warnings },
        };
    }

    private static ClusterSettings ReadCluster(JsonElement cluster, string file, List<string> warnings)
    {
        if (cluster.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException($"{file}: 'cluster' must be an object, e.g. {Example} (found {ConfigJson.Describe(cluster)})");
        }

        var settings = ClusterSettings.Default;
        foreach (var property in cluster.EnumerateObject())
        {
            switch (property.Name)
            {
                case "silo_port":
                    settings = settings with { SiloPort = Port(property.Value, "cluster.silo_port", file, allowNone: false) };
                    break;
                case "gateway_port":
                    settings = settings with { GatewayPort = Port(property.Value, "cluster.gateway_port", file, allowNone: true) };
                    break;
                case "advertised_address":
                    var address = RequiredText(property.Value, "cluster.advertised_address", file);
                    if (Uri.CheckHostName(address) is UriHostNameType.Unknown or UriHostNameType.Basic)
                    {
                        throw new ConfigException($"{file}: 'cluster.advertised_address' must be this node's IP address (or host name) as the other nodes reach it, e.g. \"10.0.0.5\" (found \"{address}\")");
                    }
                    settings = settings with { AdvertisedAddress = address };
                    break;
                default:
                    warnings.Add(ConfigJson.UnknownKey($"cluster.{property.Name}", file));
                    break;
            }
        }

        return settings.GatewayPort == settings.SiloPort
            ? throw new ConfigException($"{file}: 'cluster.silo_port' and 'cluster.gateway_port' must differ (both are {settings.SiloPort})")
            : settings;
    }

    private static int Port(JsonElement element, string key, string file, bool allowNone)
    {
        var port = element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out var number) ? number : -1;
        return port is >= 1 and <= 65535 || allowNone && port == 0
            ? port
            : throw new ConfigException($"{file}: '{key}' must be a port number from 1 to 65535{(allowNone ? " (or 0 for none)" : "")}, e.g. {Example} (found {ConfigJson.Describe(element)})");
    }

    private static StoreSettings ReadStore(JsonElement store, LoopConfig config, string file, string? postgres, List<string> warnings)
    {
        if (store.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException($"{file}: 'store' must be an object, e.g. {Example} (found {ConfigJson.Describe(store)})");
        }

        var kind = StoreKind.Sqlite;
        string? path = null;
        string? connectionString = null;
        foreach (var property in store.EnumerateObject())
        {
            switch (property.Name)
            {
                case "kind":
                    var text = RequiredText(property.Value, "store.kind", file);
                    kind = text.ToLowerInvariant() switch
                    {
                        "sqlite" => StoreKind.Sqlite,
                        "postgres" or "postgresql" => StoreKind.Postgres,
                        _ => throw new ConfigException($"{file}: 'store.kind' must be \"sqlite\" (one node) or \"postgres\" (a cluster), e.g. \"store\": {{ \"kind\": \"sqlite\" }} (found \"{text}\")"),
                    };
                    break;
                case "path":
                    path = ConfigJson.OptionalString(property.Value, "store.path", file);
                    break;
                case "connection_string":
                    connectionString = ConfigJson.OptionalString(property.Value, "store.connection_string", file);
                    break;
                default:
                    warnings.Add(ConfigJson.UnknownKey($"store.{property.Name}", file));
                    break;
            }
        }

        if (kind == StoreKind.Postgres)
        {
            connectionString = string.IsNullOrWhiteSpace(postgres) ? connectionString : postgres;
            return string.IsNullOrWhiteSpace(connectionString)
                ? throw new ConfigException($"{file}: a postgres store needs 'store.connection_string' (or the {PostgresVariable} environment variable, which keeps the password out of the file), e.g. {Example}")
                : new StoreSettings(kind, null, connectionString);
        }

        if (string.IsNullOrWhiteSpace(path))
        {
            return new StoreSettings(kind, config.DbPath, null);
        }

        // A relative path is relative to silo.json, so a node directory can be moved as a whole.
        var expanded = LoopPaths.ExpandHome(path, LoopPaths.DefaultUserHome());
        return new StoreSettings(kind, System.IO.Path.GetFullPath(expanded, System.IO.Path.GetDirectoryName(file)!), null);
    }

    private static string RequiredText(JsonElement element, string key, string file) =>
        element.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(element.GetString())
            ? element.GetString()!
            : throw new ConfigException($"{file}: '{key}' must be a non-empty string, e.g. {Example} (found {ConfigJson.Describe(element)})");
}
