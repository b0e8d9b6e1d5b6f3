namespace Loop.Domain.Tests;

using Loop.Domain.Channels;

/// <summary>One name per role, shared by the store's column and the API's <c>role</c>.</summary>
public sealed class MessageRoleTests
{
    [Theory]
    [InlineData(MessageRole.User, "user")]
    [InlineData(MessageRole.Agent, "agent")]
    [InlineData(MessageRole.System, "system")]
    public void Each_role_has_one_wire_name_that_reads_back_as_the_role(MessageRole role, string name)
    {
        Assert.Equal(name, role.ToWire());
        Assert.Equal(role, MessageRoleExtensions.FromWire(name));
    }

    [Fact]
    public void An_unknown_name_is_not_a_role() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => MessageRoleExtensions.FromWire("assistant"));
}
