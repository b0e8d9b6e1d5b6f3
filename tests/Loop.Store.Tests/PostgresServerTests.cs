namespace Loop.Store.Tests;

using System.Diagnostics;
using Loop.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

/// <summary>The PostgreSQL server the store tests run on: a database of one's own, a server that
/// comes back after a stop or a crash, and never a server running as root.</summary>
public sealed class PostgresServerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_new_database_on_the_shared_server_answers_queries()
    {
        var clock = Stopwatch.StartNew();
        var server = await PostgresServer.SharedAsync();
        // The first test to ask starts it; printed, as a time on a shared machine is too noisy to assert.
        output.WriteLine($"SharedAsync returned after {clock.ElapsedMilliseconds} ms");

        var connectionString = await server.CreateDatabaseAsync();

        Assert.Equal(1, await ScalarAsync<int>(connectionString, "SELECT 1"));
        Assert.Equal(new NpgsqlConnectionStringBuilder(connectionString).Database, await ScalarAsync<string>(connectionString, "SELECT current_database()"));
    }

    [Fact]
    public async Task A_database_answers_again_after_the_server_is_stopped_and_started()
    {
        await using var server = await PostgresServer.StartNewAsync();
        var connectionString = await server.CreateDatabaseAsync("kept");
        await ExecuteAsync(connectionString, "CREATE TABLE notes (text text); INSERT INTO notes VALUES ('before the stop')");

        await server.StopAsync();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(connectionString, "SELECT 1"));
        await server.StartAsync();

        Assert.Equal("before the stop", await ScalarAsync<string>(connectionString, "SELECT text FROM notes"));
    }

    [Fact]
    public async Task A_killed_server_starts_again_with_what_was_committed()
    {
        await using var server = await PostgresServer.StartNewAsync();
        var connectionString = await server.CreateDatabaseAsync();
        await ExecuteAsync(connectionString, "CREATE TABLE notes (text text); INSERT INTO notes VALUES ('before the crash')");
        await using var session = new NpgsqlConnection(connectionString);
        await session.OpenAsync();
        await using var query = new NpgsqlCommand("SELECT 1", session);

        await server.KillAsync();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => query.ExecuteScalarAsync());
        await server.StartAsync();

        Assert.Equal("before the crash", await ScalarAsync<string>(connectionString, "SELECT text FROM notes"));
    }

    [Fact]
    public async Task The_server_does_not_run_as_root()
    {
        var server = await PostgresServer.SharedAsync();
        var backend = await ScalarAsync<int>(await server.CreateDatabaseAsync(), "SELECT pg_backend_pid()");

        var uid = File.ReadLines($"/proc/{backend}/status").Single(line => line.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t')[1];

        // When the tests run as root, it runs as the postgres user; else as the tests' own user.
        Assert.NotEqual("0", uid);
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
