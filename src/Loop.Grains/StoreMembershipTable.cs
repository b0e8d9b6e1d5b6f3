namespace Loop.Grains;

using System.Globalization;
using Loop.Store;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;

/// <summary>Orleans' membership table (which nodes form the cluster and whether they are alive),
/// kept in Loop's store: the cluster's nodes share its PostgreSQL database already, so they need
/// nothing else to find one another. The tables are created by Loop's migrations.</summary>
public sealed class StoreMembershipTable(SqlLoopStore store, IOptions<ClusterOptions> cluster) : IMembershipTable
{
    private readonly string _clusterId = cluster.Value.ClusterId;

    public Task InitializeMembershipTable(bool tryInitTableVersion) =>
        tryInitTableVersion ? store.InitializeMembershipAsync(_clusterId, CancellationToken.None) : Task.CompletedTask;

    public Task DeleteMembershipTableEntries(string clusterId) => store.DeleteMembershipAsync(clusterId, CancellationToken.None);

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) =>
        store.DeleteDefunctMembersAsync(_clusterId, (int)SiloStatus.Active, beforeDate, CancellationToken.None);

    public async Task<MembershipTableData> ReadRow(SiloAddress key) =>
        ToData(await store.ReadMembershipAsync(_clusterId, key.ToParsableString(), CancellationToken.None));

    public async Task<MembershipTableData> ReadAll() =>
        ToData(await store.ReadMembershipAsync(_clusterId, null, CancellationToken.None));

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) =>
        store.InsertMemberAsync(_clusterId, ToRow(entry), ToVersion(tableVersion), CancellationToken.None);

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) =>
        store.UpdateMemberAsync(_clusterId, ToRow(entry), etag, ToVersion(tableVersion), CancellationToken.None);

    public Task UpdateIAmAlive(MembershipEntry entry) =>
        store.UpdateIAmAliveAsync(_clusterId, entry.SiloAddress.ToParsableString(), Utc(entry.IAmAliveTime), CancellationToken.None);

    private static MembershipTableData ToData(Membership membership) =>
        new(membership.Members.Select(m => Tuple.Create(ToEntry(m), m.ETag)).ToList(),
            new TableVersion(membership.Version.Version, membership.Version.ETag));

    private static MembershipTableVersion ToVersion(TableVersion version) => new(version.Version, version.VersionEtag);

    private static MemberRow ToRow(MembershipEntry entry) => new(
        entry.SiloAddress.ToParsableString(), entry.SiloName ?? "", entry.HostName ?? "", (int)entry.Status, entry.ProxyPort,
        FormatVotes(entry.SuspectTimes), Utc(entry.StartTime), Utc(entry.IAmAliveTime));

    private static MembershipEntry ToEntry(MemberRow row) => new()
    {
        SiloAddress = SiloAddress.FromParsableString(row.Silo),
        SiloName = row.SiloName,
        HostName = row.HostName,
        Status = (SiloStatus)row.Status,
        ProxyPort = row.ProxyPort,
        SuspectTimes = ParseVotes(row.SuspectTimes),
        StartTime = row.StartTime.UtcDateTime,
        IAmAliveTime = row.IAmAliveTime.UtcDateTime,
    };

    // Votes as "address,ticks" separated by '|': neither character occurs in a parsable silo address.
    private static string FormatVotes(List<Tuple<SiloAddress, DateTime>>? votes) =>
        votes is null ? "" : string.Join('|', votes.Select(v =>
            $"{v.Item1.ToParsableString()},{DateTime.SpecifyKind(v.Item2, DateTimeKind.Utc).Ticks.ToString(CultureInfo.InvariantCulture)}"));

    private static List<Tuple<SiloAddress, DateTime>> ParseVotes(string votes) =>
        votes.Length == 0
            ? []
            : votes.Split('|').Select(vote =>
            {
                var (address, ticks) = (vote[..vote.LastIndexOf(',')], vote[(vote.LastIndexOf(',') + 1)..]);
                return Tuple.Create(SiloAddress.FromParsableString(address), new DateTime(long.Parse(ticks, CultureInfo.InvariantCulture), DateTimeKind.Utc));
            }).ToList();

    private static DateTimeOffset Utc(DateTime time) => new(DateTime.SpecifyKind(time, DateTimeKind.Utc));
}
