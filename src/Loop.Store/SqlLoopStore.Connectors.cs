namespace Loop.Store;

using System.Data.Common;
using System.Text.Json;
using Dapper;
using Loop.Domain.Connectors;

public abstract partial class SqlLoopStore
{
    private const string ConnectorSelect = """
        SELECT id AS Id, kind AS Kind, name AS Name, enabled AS Enabled, settings AS Settings, allowed AS Allowed,
               secret_names AS SecretNames, source AS Source, created_at AS CreatedAt, updated_at AS UpdatedAt,
               status AS Status, status_error AS StatusError, status_at AS StatusAt, status_node AS StatusNode
        FROM connectors
        """;

    public Task<IReadOnlyList<Connector>> ListConnectorsAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection => (IReadOnlyList<Connector>)(await connection.QueryAsync<ConnectorRow>(Command(
            ConnectorSelect + " ORDER BY name, id", null, null, cancellationToken))).Select(r => r.ToConnector()).ToList(), cancellationToken);

    public Task<Connector?> GetConnectorAsync(string connectorId, CancellationToken cancellationToken) =>
        ReadAsync(async connection => (await connection.QuerySingleOrDefaultAsync<ConnectorRow>(Command(
            ConnectorSelect + " WHERE id = @id", new { id = connectorId }, null, cancellationToken)))?.ToConnector(), cancellationToken);

    public Task<string?> GetConnectorSecretsAsync(string connectorId, CancellationToken cancellationToken) =>
        ReadAsync(connection => connection.QuerySingleOrDefaultAsync<string?>(Command(
            "SELECT secrets FROM connectors WHERE id = @id", new { id = connectorId }, null, cancellationToken)), cancellationToken);

    public Task InsertConnectorAsync(NewConnector connector, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => InsertConnectorAsync(connection, tx, connector, cancellationToken), cancellationToken);

    private Task<int> InsertConnectorAsync(DbConnection connection, DbTransaction tx, NewConnector connector, CancellationToken cancellationToken)
    {
        var now = Columns.ToMs(_time.GetUtcNow());
        return connection.ExecuteAsync(Command("""
            INSERT INTO connectors (id, kind, name, enabled, settings, allowed, secret_names, secrets, source, created_at, updated_at, status)
            VALUES (@id, @kind, @name, @enabled, @settings, @allowed, @secret_names, @secrets, @source, @now, @now, @status)
            """, ConnectorParameters(connector, now, ConnectorStatus.Connecting.State), tx, cancellationToken));
    }

    public Task<bool> UpdateConnectorAsync(NewConnector connector, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command("""
            UPDATE connectors SET kind = @kind, name = @name, enabled = @enabled, settings = @settings, allowed = @allowed,
                   secret_names = @secret_names, secrets = @secrets, source = @source, updated_at = @now
            WHERE id = @id
            """, ConnectorParameters(connector, Columns.ToMs(_time.GetUtcNow()), null), tx, cancellationToken)) == 1, cancellationToken);

    public Task<bool> DeleteConnectorAsync(string connectorId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await connection.ExecuteAsync(Command("DELETE FROM budgets WHERE scope = 'connector' AND scope_id = @id", new { id = connectorId }, tx, cancellationToken));
            await connection.ExecuteAsync(Command("DELETE FROM chat_roles WHERE connector_id = @id", new { id = connectorId }, tx, cancellationToken));
            return await connection.ExecuteAsync(Command("DELETE FROM connectors WHERE id = @id", new { id = connectorId }, tx, cancellationToken)) == 1;
        }, cancellationToken);

    public Task SyncConfigConnectorsAsync(IReadOnlyList<NewConnector> connectors, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            // Every node syncs at start: one at a time, each seeing what the last one wrote.
            await LockAsync(connection, tx, "loop.config-connectors", cancellationToken);
            var stored = (await connection.QueryAsync<ConnectorRow>(Command(
                ConnectorSelect + " WHERE source = 'config'", null, tx, cancellationToken))).ToDictionary(r => r.Id, StringComparer.Ordinal);
            foreach (var gone in stored.Keys.Where(id => connectors.All(c => c.Id != id)))
            {
                await connection.ExecuteAsync(Command("DELETE FROM connectors WHERE id = @id", new { id = gone }, tx, cancellationToken));
            }
            var now = Columns.ToMs(_time.GetUtcNow());
            foreach (var connector in connectors)
            {
                if (!stored.TryGetValue(connector.Id, out var row))
                {
                    await InsertConnectorAsync(connection, tx, connector, cancellationToken);
                }
                else if (!row.Matches(connector))
                {
                    await connection.ExecuteAsync(Command("""
                        UPDATE connectors SET kind = @kind, name = @name, enabled = @enabled, settings = @settings, allowed = @allowed,
                               secret_names = @secret_names, secrets = @secrets, updated_at = @now
                        WHERE id = @id
                        """, ConnectorParameters(connector, now, null), tx, cancellationToken));
                }
            }
            return 0;
        }, cancellationToken);

    public Task SetConnectorStatusAsync(string connectorId, ConnectorStatus status, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command("""
            UPDATE connectors SET status = @status, status_error = @error, status_at = @at, status_node = @node WHERE id = @id
            """, new { id = connectorId, status = status.State, error = status.Error, at = Columns.ToMs(status.At), node = status.Node },
            tx, cancellationToken)), cancellationToken);

    private static object ConnectorParameters(NewConnector c, long now, string? status) => new
    {
        id = c.Id,
        kind = ConnectorRow.Wire(c.Kind),
        name = c.Name,
        enabled = c.Enabled ? 1 : 0,
        settings = JsonSerializer.Serialize(c.Settings),
        allowed = JsonSerializer.Serialize(c.Allowed),
        secret_names = JsonSerializer.Serialize(c.SecretNames),
        secrets = c.SealedSecrets,
        source = c.Source == ConnectorSource.Api ? "api" : "config",
        now,
        status,
    };

    private sealed class ConnectorRow
    {
        public string Id { get; set; } = "";
        public string Kind { get; set; } = "";
        public string Name { get; set; } = "";
        public long Enabled { get; set; }
        public string Settings { get; set; } = "{}";
        public string Allowed { get; set; } = "[]";
        public string SecretNames { get; set; } = "[]";
        public string Source { get; set; } = "";
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }
        public string Status { get; set; } = "";
        public string? StatusError { get; set; }
        public long? StatusAt { get; set; }
        public string? StatusNode { get; set; }

        public static string Wire(ConnectorKind kind) => kind.ToString().ToLowerInvariant();

        public Connector ToConnector() => new(
            Id,
            Enum.Parse<ConnectorKind>(Kind, ignoreCase: true),
            Name,
            Enabled != 0,
            JsonSerializer.Deserialize<Dictionary<string, string>>(Settings)!,
            JsonSerializer.Deserialize<List<string>>(Allowed)!,
            JsonSerializer.Deserialize<List<string>>(SecretNames)!,
            Source == "api" ? ConnectorSource.Api : ConnectorSource.Config,
            Columns.FromMs(CreatedAt),
            Columns.FromMs(UpdatedAt),
            new ConnectorStatus(Status, StatusError, Columns.FromMs(StatusAt), StatusNode));

        /// <summary>Whether the config file still says what this row says (then it is left alone, and
        /// its updated_at tells the nodes nothing changed).</summary>
        public bool Matches(NewConnector c) =>
            Kind == Wire(c.Kind) && Name == c.Name && Enabled != 0 == c.Enabled
            && Settings == JsonSerializer.Serialize(c.Settings) && Allowed == JsonSerializer.Serialize(c.Allowed)
            && SecretNames == JsonSerializer.Serialize(c.SecretNames);
    }

    public Task<ChatRoles> GetChatRolesAsync(string connectorId, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<ChatRolesRow>(Command(
                "SELECT owners AS Owners, members AS Members FROM chat_roles WHERE connector_id = @id", new { id = connectorId }, null, cancellationToken));
            return row is null
                ? ChatRoles.None
                : new ChatRoles(JsonSerializer.Deserialize<List<string>>(row.Owners) ?? [], JsonSerializer.Deserialize<List<string>>(row.Members) ?? []);
        }, cancellationToken);

    public Task SetChatRolesAsync(string connectorId, ChatRoles roles, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(roles);
        return WriteAsync(async (connection, tx) =>
        {
            if (roles.Owners.Count == 0 && roles.Members.Count == 0)
            {
                return await connection.ExecuteAsync(Command("DELETE FROM chat_roles WHERE connector_id = @id", new { id = connectorId }, tx, cancellationToken));
            }
            return await connection.ExecuteAsync(Command("""
                INSERT INTO chat_roles (connector_id, owners, members, updated_at) VALUES (@id, @owners, @members, @at)
                ON CONFLICT (connector_id) DO UPDATE SET owners = excluded.owners, members = excluded.members, updated_at = excluded.updated_at
                """, new { id = connectorId, owners = JsonSerializer.Serialize(roles.Owners), members = JsonSerializer.Serialize(roles.Members), at = Columns.ToMs(_time.GetUtcNow()) },
                tx, cancellationToken));
        }, cancellationToken);
    }
}

internal sealed class ChatRolesRow
{
    public string Owners { get; set; } = "[]";
    public string Members { get; set; } = "[]";
}
