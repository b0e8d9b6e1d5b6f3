namespace Loop.Domain.Tests;

using Loop.Domain.Connectors;

public sealed class ChatRolesTests
{
    [Fact]
    public void Without_owners_whoever_may_talk_may_do_everything()
    {
        Assert.Equal(ChatRole.Owner, ChatRoles.None.RoleOf(["42"], allowedToTalk: true));
        Assert.Equal(ChatRole.None, ChatRoles.None.RoleOf(["42"], allowedToTalk: false));
        Assert.Equal(ChatRole.Owner, new ChatRoles([], ["7"]).RoleOf(["42"], allowedToTalk: true));
    }

    [Fact]
    public void Owners_and_listed_members_by_any_of_their_identities()
    {
        var roles = new ChatRoles(["1", "Ann@Example.com"], ["role-9", "@team.example"]);
        Assert.Equal(ChatRole.Owner, roles.RoleOf(["role-9", "1"], allowedToTalk: true));
        Assert.Equal(ChatRole.Owner, roles.RoleOf(["ann@example.com"], allowedToTalk: true));
        Assert.Equal(ChatRole.Member, roles.RoleOf(["2", "role-9"], allowedToTalk: true));
        Assert.Equal(ChatRole.Member, roles.RoleOf(["bo@team.example"], allowedToTalk: true));
        Assert.Equal(ChatRole.None, roles.RoleOf(["bo@evilteam.example"], allowedToTalk: true));
        Assert.Equal(ChatRole.None, roles.RoleOf(["3"], allowedToTalk: true));
    }

    [Fact]
    public void With_owners_and_no_members_listed_the_connectors_whitelist_says_who_is_a_member()
    {
        var roles = new ChatRoles(["1"], []);
        Assert.Equal(ChatRole.Member, roles.RoleOf(["2"], allowedToTalk: true));
        Assert.Equal(ChatRole.None, roles.RoleOf(["2"], allowedToTalk: false));
        Assert.Equal(ChatRole.Member, new ChatRoles(["1"], ["*"]).RoleOf(["2"], allowedToTalk: false));
    }
}
