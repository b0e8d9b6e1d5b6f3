namespace Loop.Store.Tests;

using Loop.Domain.Connectors;
using Xunit;

/// <summary>Connectors as the store keeps them: fields round-trip, credentials only through their own
/// read, status written by the node holding the connection, and the config file's connectors synced.</summary>
public abstract class ConnectorStoreTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private SqlLoopStore _store = null!;

    public async Task InitializeAsync() => _store = await backend.OpenAsync(_time);

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task A_connector_reads_back_as_written_and_its_sealed_credentials_only_through_their_own_read()
    {
        var telegram = Telegram("cn_1", "support bot");
        await _store.InsertConnectorAsync(telegram, None);

        var read = Assert.Single(await _store.ListConnectorsAsync(None));
        Assert.Equal(("cn_1", ConnectorKind.Telegram, "support bot", true, ConnectorSource.Api), (read.Id, read.Kind, read.Name, read.Enabled, read.Source));
        Assert.Equal(telegram.Settings, read.Settings);
        Assert.Equal(["123", "@alice"], read.Allowed);
        Assert.Equal(["token"], read.SecretNames);
        Assert.Equal(new ConnectorStatus("connecting", null, null, null), read.Status);
        Assert.Equal(_time.GetUtcNow(), read.CreatedAt);
        Assert.Equal("v1.sealed", await _store.GetConnectorSecretsAsync("cn_1", None));
        Assert.Equivalent(read, await _store.GetConnectorAsync("cn_1", None), strict: true);
        Assert.Null(await _store.GetConnectorAsync("cn_missing", None));
    }

    [Fact]
    public async Task An_edit_replaces_the_fields_keeps_the_status_and_moves_updated_at()
    {
        await _store.InsertConnectorAsync(Telegram("cn_1", "bot"), None);
        var status = new ConnectorStatus("failed", "401 Unauthorized", _time.GetUtcNow(), "node-2");
        await _store.SetConnectorStatusAsync("cn_1", status, None);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.True(await _store.UpdateConnectorAsync(Telegram("cn_1", "renamed") with { Enabled = false, SealedSecrets = "v1.other" }, None));
        Assert.False(await _store.UpdateConnectorAsync(Telegram("cn_missing", "x"), None));

        var read = (await _store.GetConnectorAsync("cn_1", None))!;
        Assert.Equal(("renamed", false), (read.Name, read.Enabled));
        Assert.Equal(status, read.Status);
        Assert.Equal(_time.GetUtcNow(), read.UpdatedAt);
        Assert.Equal("v1.other", await _store.GetConnectorSecretsAsync("cn_1", None));
        Assert.True(await _store.DeleteConnectorAsync("cn_1", None));
        Assert.False(await _store.DeleteConnectorAsync("cn_1", None));
    }

    [Fact]
    public async Task Syncing_the_config_files_connectors_adds_changes_and_removes_only_those_and_leaves_unchanged_ones_be()
    {
        await _store.InsertConnectorAsync(Telegram("cn_1", "through the api"), None);
        var discord = new NewConnector("discord", ConnectorKind.Discord, "discord", true,
            new SortedDictionary<string, string> { ["app_id"] = "1" }, [], ["token"], null, ConnectorSource.Config);
        var email = discord with { Id = "email", Kind = ConnectorKind.Email, Name = "email" };
        await _store.SyncConfigConnectorsAsync([discord, email], None);
        var first = (await _store.GetConnectorAsync("discord", None))!;

        _time.Advance(TimeSpan.FromSeconds(5));
        await _store.SyncConfigConnectorsAsync([discord, email with { Allowed = ["@example.com"] }], None);
        Assert.Equivalent(first, await _store.GetConnectorAsync("discord", None), strict: true);
        Assert.Equal(_time.GetUtcNow(), (await _store.GetConnectorAsync("email", None))!.UpdatedAt);

        await _store.SyncConfigConnectorsAsync([email], None);
        Assert.Equal(["cn_1", "email"], (await _store.ListConnectorsAsync(None)).Select(c => c.Id).Order());
    }

    private static NewConnector Telegram(string id, string name) => new(id, ConnectorKind.Telegram, name, true,
        new SortedDictionary<string, string> { ["api_url"] = "http://127.0.0.1:1" }, ["123", "@alice"], ["token"], "v1.sealed", ConnectorSource.Api);
}

public sealed class ConnectorStoreTestsOnSqlite() : ConnectorStoreTests(new SqliteBackend());

public sealed class ConnectorStoreTestsOnPostgres() : ConnectorStoreTests(new PostgresBackend());
