namespace Loop.Config.Tests;

public sealed class NodeSettingsTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly LoopConfig _config = new() { DbPath = "/srv/loop/loop.db", ApiAddr = "127.0.0.1:8300" };

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Without_silo_json_the_settings_come_from_the_config()
    {
        foreach (var settings in new[] { NodeSettings.Load(null, _config), NodeSettings.Load(_temp.Combine("silo.json"), _config) })
        {
            Assert.Equal(Environment.MachineName, settings.NodeName);
            Assert.Equal(new StoreSettings(StoreKind.Sqlite, "/srv/loop/loop.db", null), settings.Store);
            Assert.Equal("127.0.0.1:8300", settings.ApiAddr);
            Assert.Empty(settings.Warnings);
        }
    }

    [Fact]
    public void Values_in_silo_json_override_db_path_and_api_addr()
    {
        var file = _temp.Write("silo.json", """
            {
              // this node
              "node_name": "node-a",
              "store": { "kind": "sqlite", "path": "state/loop.db", },
              "api_addr": "0.0.0.0:9000",
            }
            """);

        var settings = NodeSettings.Load(file, _config);

        Assert.Equal("node-a", settings.NodeName);
        Assert.Equal(new StoreSettings(StoreKind.Sqlite, _temp.Combine("state", "loop.db"), null), settings.Store);
        Assert.Equal("0.0.0.0:9000", settings.ApiAddr);
    }

    [Fact]
    public void A_postgres_store_takes_its_connection_string_and_hides_it_when_printed()
    {
        var file = _temp.Write("silo.json", """{ "store": { "kind": "postgres", "connection_string": "Host=db;Password=pg-secret" } }""");

        var settings = NodeSettings.Load(file, _config);

        Assert.Equal(new StoreSettings(StoreKind.Postgres, null, "Host=db;Password=pg-secret"), settings.Store);
        Assert.Equal("127.0.0.1:8300", settings.ApiAddr);
        Assert.DoesNotContain("pg-secret", settings.ToString());
    }

    [Fact]
    public void A_postgres_store_without_connection_string_is_an_error_with_an_example()
    {
        var file = _temp.Write("silo.json", """{ "store": { "kind": "postgres" } }""");

        var error = Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config));

        Assert.StartsWith($"{file}: a postgres store needs 'store.connection_string'", error.Message);
        Assert.Contains("\"connection_string\": \"Host=", error.Message);
    }

    [Fact]
    public void An_unknown_store_kind_or_bad_api_addr_is_an_error()
    {
        var file = _temp.Write("silo.json", """{ "store": { "kind": "mysql" } }""");
        Assert.Contains("'store.kind' must be \"sqlite\"", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);

        File.WriteAllText(file, """{ "api_addr": "nowhere" }""");
        Assert.Contains("'api_addr' must be host:port", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);

        // What config.json refuses, silo.json refuses in the same words.
        File.WriteAllText(file, """{ "api_addr": "myhost:8222" }""");
        var hostName = Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message;
        Assert.StartsWith($"{file}: 'api_addr' must be an IP address or localhost, not the host name 'myhost'", hostName);
        Assert.Contains("allowed_hosts", hostName);
    }

    [Fact]
    public void A_syntax_error_names_the_file_line_and_column_and_unknown_keys_warn()
    {
        var file = _temp.Write("silo.json", "{\n  \"node_name\": \"a\",\n  \"store\": {\n}");
        Assert.StartsWith($"{file}:4:2: ", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);

        File.WriteAllText(file, """{ "cluster": {} }""");
        Assert.Equal($"unknown key 'cluster' in {file} (ignored)", Assert.Single(NodeSettings.Load(file, _config).Warnings));
    }
}
