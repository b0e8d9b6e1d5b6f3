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
    public void A_cluster_node_reads_its_ports_and_address_and_a_postgres_store_alone_is_a_cluster_on_default_ports()
    {
        var file = _temp.Write("silo.json", """
            {
              "node_name": "node-2",
              "store": { "kind": "postgres", "connection_string": "Host=db;Database=loop" },
              "cluster": { "silo_port": 11112, "gateway_port": 0, "advertised_address": "10.0.0.5" }
            }
            """);

        Assert.Equal(new ClusterSettings(11112, 0, "10.0.0.5"), NodeSettings.Load(file, _config).Cluster);

        File.WriteAllText(file, """{ "store": { "kind": "postgres", "connection_string": "Host=db" } }""");
        Assert.Equal(new ClusterSettings(11111, 30000, null), NodeSettings.Load(file, _config).Cluster);
        Assert.Null(NodeSettings.Load(null, _config).Cluster);
    }

    [Fact]
    public void LOOP_POSTGRES_gives_the_connection_string_and_wins_over_the_file()
    {
        var file = _temp.Write("silo.json", """{ "store": { "kind": "postgres" }, "cluster": {} }""");

        Assert.Equal("Host=env;Password=from-env", NodeSettings.Load(file, _config, "Host=env;Password=from-env").Store.ConnectionString);

        File.WriteAllText(file, """{ "store": { "kind": "postgres", "connection_string": "Host=file" } }""");
        Assert.Equal("Host=env", NodeSettings.Load(file, _config, "Host=env").Store.ConnectionString);
        Assert.Contains("LOOP_POSTGRES", Assert.Throws<ConfigException>(() =>
            NodeSettings.Load(_temp.Write("other.json", """{ "store": { "kind": "postgres" } }"""), _config)).Message);
    }

    [Fact]
    public void A_cluster_on_sqlite_or_with_a_bad_port_or_address_is_an_error_that_says_what_to_write()
    {
        var file = _temp.Write("silo.json", """{ "cluster": { "silo_port": 11111 } }""");
        Assert.Contains("a cluster keeps its state in PostgreSQL", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);

        File.WriteAllText(file, """{ "store": { "kind": "postgres", "connection_string": "Host=db" }, "cluster": { "silo_port": 70000 } }""");
        Assert.Contains("'cluster.silo_port' must be a port number from 1 to 65535", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);

        File.WriteAllText(file, """{ "store": { "kind": "postgres", "connection_string": "Host=db" }, "cluster": { "silo_port": 30000 } }""");
        Assert.Contains("must differ", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);

        File.WriteAllText(file, """{ "store": { "kind": "postgres", "connection_string": "Host=db" }, "cluster": { "advertised_address": "not an address!" } }""");
        Assert.Contains("'cluster.advertised_address' must be this node's IP address", Assert.Throws<ConfigException>(() => NodeSettings.Load(file, _config)).Message);
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

        File.WriteAllText(file, """{ "clusters": {} }""");
        Assert.Equal($"unknown key 'clusters' in {file} (ignored)", Assert.Single(NodeSettings.Load(file, _config).Warnings));
    }
}
