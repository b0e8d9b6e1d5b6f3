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

/// <summary>Settings of this node (silo.json): its name, its store and its API address.
/// Values present in silo.json win over config.json's db_path and api_addr.</summary>
public sealed record NodeSettings(string NodeName, StoreSettings Store, string ApiAddr, IReadOnlyList<string> Warnings)
{
    private const string Example = """{ "node_name": "node-1", "store": { "kind": "postgres", "connection_string": "Host=db;Database=loop;Username=loop" }, "api_addr": "127.0.0.1:8222" }""";

    /// <summary>Reads silo.json at <paramref name="path"/>; a null path or a missing file gives
    /// settings derived from <paramref name="config"/> (SQLite at db_path, api_addr, the machine name).</summary>
    /// <exception cref="ConfigException">silo.json is not valid JSON or holds an unusable value.</exception>
    public static NodeSettings Load(string? path, LoopConfig config)
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
                    settings = settings with { Store = ReadStore(property.Value, config, file, warnings) };
                    break;
                default:
                    warnings.Add(ConfigJson.UnknownKey(property.Name, file));
                    break;
            }
        }

        return settings with { Warnings = warnings };
    }

    private static StoreSettings ReadStore(JsonElement store, LoopConfig config, string file, List<string> warnings)
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
            return string.IsNullOrWhiteSpace(connectionString)
                ? throw new ConfigException($"{file}: a postgres store needs 'store.connection_string', e.g. {Example}")
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
