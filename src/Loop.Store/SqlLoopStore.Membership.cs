namespace Loop.Store;

using System.Data.Common;
using System.Globalization;
using Dapper;

/// <summary>One node as Orleans' membership table keeps it: <see cref="Silo"/> is its address
/// (with its generation) in Orleans' parsable form, <see cref="SuspectTimes"/> the votes against
/// it in Orleans' own text, <see cref="Status"/> Orleans' status number.</summary>
public sealed record MemberRow(
    string Silo, string SiloName, string HostName, int Status, int ProxyPort, string SuspectTimes,
    DateTimeOffset StartTime, DateTimeOffset IAmAliveTime, string ETag = "");

/// <summary>The version of a cluster's membership: every change to the members moves it.</summary>
public sealed record MembershipTableVersion(int Version, string ETag);

/// <summary>A cluster's members as one read saw them, with the version they were at.</summary>
public sealed record Membership(IReadOnlyList<MemberRow> Members, MembershipTableVersion Version);

// The rows behind Orleans' membership table (the cluster's nodes), in the store the nodes share.
public abstract partial class SqlLoopStore
{
    private const string MemberColumns = """
        silo AS Silo, silo_name AS SiloName, host_name AS HostName, status AS Status, proxy_port AS ProxyPort,
        suspect_times AS SuspectTimes, start_time AS StartTime, i_am_alive_time AS IAmAliveTime, etag AS ETag
        """;

    /// <summary>Creates the cluster's version (0) unless it has one.</summary>
    public Task InitializeMembershipAsync(string clusterId, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "INSERT INTO cluster_versions (cluster_id, version, etag) VALUES (@clusterId, 0, 0) ON CONFLICT (cluster_id) DO NOTHING",
            new { clusterId }, tx, cancellationToken)), cancellationToken);

    /// <summary>The cluster's members (only <paramref name="silo"/>, when given) and its version, from one snapshot.</summary>
    public Task<Membership> ReadMembershipAsync(string clusterId, string? silo, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
        {
            using var tx = BeginSnapshot(connection);
            var version = await connection.QuerySingleOrDefaultAsync<(long Version, long ETag)?>(Command(
                "SELECT version, etag FROM cluster_versions WHERE cluster_id = @clusterId", new { clusterId }, tx, cancellationToken));
            var rows = await connection.QueryAsync<MemberDbRow>(Command(
                $"SELECT {MemberColumns} FROM cluster_members WHERE cluster_id = @clusterId" + (silo is null ? "" : " AND silo = @silo"),
                new { clusterId, silo }, tx, cancellationToken));
            var (number, etag) = version ?? (0, 0);
            return new Membership(rows.Select(r => r.ToRow()).ToList(), new MembershipTableVersion(checked((int)number), Text(etag)));
        }, cancellationToken);

    /// <summary>Adds a member and sets the version to <paramref name="version"/>'s number, if the member
    /// is new and the stored version still has <paramref name="version"/>'s etag; false otherwise.</summary>
    public Task<bool> InsertMemberAsync(string clusterId, MemberRow member, MembershipTableVersion version, CancellationToken cancellationToken) =>
        WriteOrRollBackAsync(async (connection, tx) =>
        {
            if (!await MoveVersionAsync(connection, tx, clusterId, version, cancellationToken))
            {
                return false;
            }
            var inserted = await connection.ExecuteAsync(Command($"""
                INSERT INTO cluster_members (cluster_id, silo, silo_name, host_name, status, proxy_port, suspect_times, start_time, i_am_alive_time, etag)
                VALUES (@clusterId, @Silo, @SiloName, @HostName, @Status, @ProxyPort, @SuspectTimes, @StartTime, @IAmAliveTime, 0)
                ON CONFLICT (cluster_id, silo) DO NOTHING
                """, MemberParameters(clusterId, member), tx, cancellationToken));
            return inserted == 1 ? true : throw new RollBack<bool>(false); // a member of that address exists: the version stays
        }, cancellationToken);

    /// <summary>Writes a member if its stored etag is <paramref name="etag"/> and the stored version
    /// still has <paramref name="version"/>'s etag (then the version takes its number); false otherwise.</summary>
    public Task<bool> UpdateMemberAsync(string clusterId, MemberRow member, string etag, MembershipTableVersion version, CancellationToken cancellationToken) =>
        WriteOrRollBackAsync(async (connection, tx) =>
        {
            if (!await MoveVersionAsync(connection, tx, clusterId, version, cancellationToken))
            {
                return false;
            }
            var parameters = MemberParameters(clusterId, member);
            parameters.Add("etag", ParseETag(etag));
            var updated = await connection.ExecuteAsync(Command("""
                UPDATE cluster_members SET silo_name = @SiloName, host_name = @HostName, status = @Status, proxy_port = @ProxyPort,
                    suspect_times = @SuspectTimes, start_time = @StartTime, i_am_alive_time = @IAmAliveTime, etag = etag + 1
                WHERE cluster_id = @clusterId AND silo = @Silo AND etag = @etag
                """, parameters, tx, cancellationToken));
            return updated == 1 ? true : throw new RollBack<bool>(false); // written meanwhile: the version stays
        }, cancellationToken);

    /// <summary>Records that the member is alive at <paramref name="at"/> (no version check: only its own node writes this).</summary>
    public Task UpdateIAmAliveAsync(string clusterId, string silo, DateTimeOffset at, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "UPDATE cluster_members SET i_am_alive_time = @at WHERE cluster_id = @clusterId AND silo = @silo",
            new { clusterId, silo, at = Columns.ToMs(at) }, tx, cancellationToken)), cancellationToken);

    /// <summary>Forgets the cluster: its members and its version.</summary>
    public Task DeleteMembershipAsync(string clusterId, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            await connection.ExecuteAsync(Command("DELETE FROM cluster_members WHERE cluster_id = @clusterId", new { clusterId }, tx, cancellationToken));
            return await connection.ExecuteAsync(Command("DELETE FROM cluster_versions WHERE cluster_id = @clusterId", new { clusterId }, tx, cancellationToken));
        }, cancellationToken);

    /// <summary>Removes members not in <paramref name="activeStatus"/> that were last heard of before <paramref name="before"/>.</summary>
    public Task<int> DeleteDefunctMembersAsync(string clusterId, int activeStatus, DateTimeOffset before, CancellationToken cancellationToken) =>
        WriteAsync((connection, tx) => connection.ExecuteAsync(Command(
            "DELETE FROM cluster_members WHERE cluster_id = @clusterId AND status <> @activeStatus AND i_am_alive_time < @before",
            new { clusterId, activeStatus, before = Columns.ToMs(before) }, tx, cancellationToken)), cancellationToken);

    /// <summary>The conditional update that serializes membership changes: it waits for any other
    /// writer of the version and then sees what that one wrote.</summary>
    private static async Task<bool> MoveVersionAsync(DbConnection connection, DbTransaction tx,
        string clusterId, MembershipTableVersion version, CancellationToken cancellationToken) =>
        await connection.ExecuteAsync(Command(
            "UPDATE cluster_versions SET version = @version, etag = etag + 1 WHERE cluster_id = @clusterId AND etag = @etag",
            new { clusterId, version = (long)version.Version, etag = ParseETag(version.ETag) }, tx, cancellationToken)) == 1;

    private static DynamicParameters MemberParameters(string clusterId, MemberRow member)
    {
        var parameters = new DynamicParameters(new
        {
            member.Silo,
            member.SiloName,
            member.HostName,
            member.Status,
            member.ProxyPort,
            member.SuspectTimes,
            StartTime = Columns.ToMs(member.StartTime),
            IAmAliveTime = Columns.ToMs(member.IAmAliveTime),
        });
        parameters.Add("clusterId", clusterId);
        return parameters;
    }

    // An etag that is not one of ours matches nothing.
    private static long ParseETag(string etag) =>
        long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : -1;

    private static string Text(long etag) => etag.ToString(CultureInfo.InvariantCulture);

    // Properties, not a constructor: Dapper then converts each column (INTEGER is 32-bit in PostgreSQL, 64 in SQLite).
    private sealed class MemberDbRow
    {
        public string Silo { get; set; } = "";
        public string SiloName { get; set; } = "";
        public string HostName { get; set; } = "";
        public long Status { get; set; }
        public long ProxyPort { get; set; }
        public string SuspectTimes { get; set; } = "";
        public long StartTime { get; set; }
        public long IAmAliveTime { get; set; }
        public long ETag { get; set; }

        public MemberRow ToRow() => new(Silo, SiloName, HostName, checked((int)Status), checked((int)ProxyPort), SuspectTimes,
            Columns.FromMs(StartTime), Columns.FromMs(IAmAliveTime), Text(ETag));
    }
}
