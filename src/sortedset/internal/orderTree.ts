/**
 * An order-statistics B+ tree over (score, member) keys: the ordered half of a sorted set.
 * Leaves hold parallel arrays of members and scores and are linked both ways; branches hold
 * their children's sizes, so a rank is found by summing sizes on the way down. Insert, delete,
 * rank and positioning cost O(log n); walking m neighbours from a position costs O(m).
 *
 * Why a B+ tree rather than Redis's skip list: a skip-list node is a JavaScript object with two
 * arrays, about 200 bytes a member (measured at 1M, member strings excluded), while a leaf slot is
 * one pointer and one unboxed double, about 20 bytes a member with the branches; bulk building
 * from sorted input is linear and allocates one array pair per leaf.
 *
 * It holds each key once and trusts its caller for that (the state keeps a member → score map);
 * it knows nothing of Redis bounds or persistence.
 */
import { compareMembers } from "./memberOrder.js"

/**
 * Most keys in a leaf, and most children of a branch. Measured at 1M members: 128 updates about
 * 10% slower (longer shifts), 32 walks ranges about 30% slower (more leaf hops); 64 sits between.
 */
const LEAF_MAX = 64
const BRANCH_MAX = 64
const LEAF_MIN = LEAF_MAX >> 2
const BRANCH_MIN = BRANCH_MAX >> 2
/** Bulk building fills nodes to 3/4, so that the first updates do not split every leaf. */
const LEAF_FILL = (LEAF_MAX * 3) >> 2
const BRANCH_FILL = (BRANCH_MAX * 3) >> 2
/** Deeper than any tree of 2^53 keys can grow with these fills; sizes the path stack. */
const DEPTH_MAX = 32

class Leaf {
  readonly isLeaf = true
  next: Leaf | undefined = undefined
  previous: Leaf | undefined = undefined
  constructor(public members: Array<string>, public scores: Array<number>) {}
}

class Branch {
  readonly isLeaf = false
  /**
   * `separatorScores[i]`, `separatorMembers[i]` (for i ≥ 1) is a key greater than every key of
   * `children[i - 1]` and at most every key of `children[i]`; index 0 is unused.
   */
  constructor(
    public children: Array<Node>,
    public counts: Array<number>,
    public separatorScores: Array<number>,
    public separatorMembers: Array<string>
  ) {}
}

type Node = Leaf | Branch

/** Orders keys by score, then by member bytes. */
const compareKeys = (scoreA: number, memberA: string, scoreB: number, memberB: string): number =>
  scoreA < scoreB ? -1 : scoreA > scoreB ? 1 : compareMembers(memberA, memberB)

/** A monotone test on keys: false for a prefix of the order, true after it. */
export type KeyPredicate = (score: number, member: string) => boolean

/** Receives one key of a walk. */
export type Visit = (member: string, score: number) => void

const sum = (values: ReadonlyArray<number>): number => {
  let total = 0
  for (const value of values) total += value
  return total
}

const sizeOf = (node: Node): number => (node.isLeaf ? node.members.length : sum(node.counts))

const underflows = (node: Node): boolean =>
  node.isLeaf ? node.members.length < LEAF_MIN : node.children.length < BRANCH_MIN

const overflows = (node: Node): boolean =>
  node.isLeaf ? node.members.length > LEAF_MAX : node.children.length > BRANCH_MAX

/** The child of `branch` whose key range holds (score, member). */
const childFor = (branch: Branch, score: number, member: string): number => {
  const scores = branch.separatorScores
  const members = branch.separatorMembers
  let low = 1
  let high = scores.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareKeys(scores[middle]!, members[middle]!, score, member) <= 0) low = middle + 1
    else high = middle
  }
  return low - 1
}

/** The first position of `leaf` whose key is at least (score, member). */
const leafLowerBound = (leaf: Leaf, score: number, member: string): number => {
  const scores = leaf.scores
  let low = 0
  let high = scores.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareKeys(scores[middle]!, leaf.members[middle]!, score, member) < 0) low = middle + 1
    else high = middle
  }
  return low
}

/** Splits an overfull node in two halves; returns the right half and the key that separates them. */
const split = (node: Node): { readonly right: Node; readonly size: number; readonly score: number; readonly member: string } => {
  if (node.isLeaf) {
    const middle = node.members.length >> 1
    const right = new Leaf(node.members.splice(middle), node.scores.splice(middle))
    right.next = node.next
    right.previous = node
    if (node.next !== undefined) node.next.previous = right
    node.next = right
    return { right, size: right.members.length, score: right.scores[0]!, member: right.members[0]! }
  }
  const middle = node.children.length >> 1
  const right = new Branch(
    node.children.splice(middle),
    node.counts.splice(middle),
    node.separatorScores.splice(middle),
    node.separatorMembers.splice(middle)
  )
  // The separator between the halves moves up; in the right half its slot becomes the unused one.
  return { right, size: sum(right.counts), score: right.separatorScores[0]!, member: right.separatorMembers[0]! }
}

/** Moves all of `right` into `left`; `score`/`member` is the parent's separator between them. */
const merge = (left: Node, right: Node, score: number, member: string): void => {
  if (left.isLeaf && right.isLeaf) {
    for (let i = 0; i < right.members.length; i++) {
      left.members.push(right.members[i]!)
      left.scores.push(right.scores[i]!)
    }
    left.next = right.next
    if (right.next !== undefined) right.next.previous = left
    return
  }
  const leftBranch = left as Branch
  const rightBranch = right as Branch
  rightBranch.separatorScores[0] = score
  rightBranch.separatorMembers[0] = member
  for (let i = 0; i < rightBranch.children.length; i++) {
    leftBranch.children.push(rightBranch.children[i]!)
    leftBranch.counts.push(rightBranch.counts[i]!)
    leftBranch.separatorScores.push(rightBranch.separatorScores[i]!)
    leftBranch.separatorMembers.push(rightBranch.separatorMembers[i]!)
  }
}

/**
 * Evens out two siblings that hold too many keys to merge; `score`/`member` is the parent's
 * separator between them. Returns the new separator.
 */
const redistribute = (left: Node, right: Node, score: number, member: string): readonly [number, string] => {
  if (left.isLeaf && right.isLeaf) {
    const target = (left.members.length + right.members.length) >> 1
    if (left.members.length < target) {
      const moved = target - left.members.length
      left.members.push(...right.members.splice(0, moved))
      left.scores.push(...right.scores.splice(0, moved))
    } else {
      right.members.unshift(...left.members.splice(target))
      right.scores.unshift(...left.scores.splice(target))
    }
    return [right.scores[0]!, right.members[0]!]
  }
  // Branches: concatenate (the parent's separator goes between), then cut in the middle.
  const leftBranch = left as Branch
  const rightBranch = right as Branch
  rightBranch.separatorScores[0] = score
  rightBranch.separatorMembers[0] = member
  const children = leftBranch.children.concat(rightBranch.children)
  const counts = leftBranch.counts.concat(rightBranch.counts)
  const scores = leftBranch.separatorScores.concat(rightBranch.separatorScores)
  const members = leftBranch.separatorMembers.concat(rightBranch.separatorMembers)
  const target = children.length >> 1
  leftBranch.children = children.slice(0, target)
  leftBranch.counts = counts.slice(0, target)
  leftBranch.separatorScores = scores.slice(0, target)
  leftBranch.separatorMembers = members.slice(0, target)
  rightBranch.children = children.slice(target)
  rightBranch.counts = counts.slice(target)
  rightBranch.separatorScores = scores.slice(target)
  rightBranch.separatorMembers = members.slice(target)
  return [scores[target]!, members[target]!]
}

/** Where a walk is: a leaf and a position in it. */
interface Position {
  readonly leaf: Leaf
  readonly index: number
}

/** The tree. Keys must be unique and scores never NaN; the caller guarantees both. */
export class OrderTree {
  private root: Node = new Leaf([], [])
  private count = 0
  // The path of the last descent, reused so that updates allocate nothing on the way down.
  private readonly pathNodes: Array<Branch> = new Array(DEPTH_MAX)
  private readonly pathIndexes: Array<number> = new Array(DEPTH_MAX).fill(0)

  /** Builds a tree from keys already in order (strictly increasing); linear time. */
  static fromSorted(members: ReadonlyArray<string>, scores: ReadonlyArray<number>): OrderTree {
    const tree = new OrderTree()
    if (members.length === 0) return tree
    let level: Array<Node> = []
    let firstScores: Array<number> = []
    let firstMembers: Array<string> = []
    let previous: Leaf | undefined
    for (const [start, end] of evenParts(members.length, LEAF_FILL)) {
      const leaf = new Leaf(members.slice(start, end), scores.slice(start, end))
      leaf.previous = previous
      if (previous !== undefined) previous.next = leaf
      previous = leaf
      level.push(leaf)
      firstScores.push(scores[start]!)
      firstMembers.push(members[start]!)
    }
    while (level.length > 1) {
      const next: Array<Node> = []
      const nextScores: Array<number> = []
      const nextMembers: Array<string> = []
      for (const [start, end] of evenParts(level.length, BRANCH_FILL)) {
        const children = level.slice(start, end)
        next.push(new Branch(children, children.map(sizeOf), firstScores.slice(start, end), firstMembers.slice(start, end)))
        nextScores.push(firstScores[start]!)
        nextMembers.push(firstMembers[start]!)
      }
      level = next
      firstScores = nextScores
      firstMembers = nextMembers
    }
    tree.root = level[0]!
    tree.count = members.length
    return tree
  }

  /** How many keys the tree holds. */
  get size(): number {
    return this.count
  }

  /** Adds a key that is not in the tree. */
  insert(score: number, member: string): void {
    let node = this.root
    let depth = 0
    while (!node.isLeaf) {
      const index = childFor(node, score, member)
      node.counts[index]!++
      this.pathNodes[depth] = node
      this.pathIndexes[depth] = index
      depth++
      node = node.children[index]!
    }
    const position = leafLowerBound(node, score, member)
    node.members.splice(position, 0, member)
    node.scores.splice(position, 0, score)
    this.count++
    if (node.members.length > LEAF_MAX) this.splitUp(node, depth)
  }

  /** Removes a key; returns whether it was there. */
  remove(score: number, member: string): boolean {
    let node = this.root
    let depth = 0
    while (!node.isLeaf) {
      const index = childFor(node, score, member)
      this.pathNodes[depth] = node
      this.pathIndexes[depth] = index
      depth++
      node = node.children[index]!
    }
    const position = leafLowerBound(node, score, member)
    if (position >= node.members.length || node.members[position] !== member || node.scores[position] !== score) return false
    node.members.splice(position, 1)
    node.scores.splice(position, 1)
    for (let d = 0; d < depth; d++) this.pathNodes[d]!.counts[this.pathIndexes[d]!]!--
    this.count--
    if (depth > 0 && underflows(node)) this.rebalanceUp(node, depth)
    return true
  }

  /** How many keys are smaller than (score, member): the rank of that key when it is present. */
  rankOf(score: number, member: string): number {
    let node = this.root
    let rank = 0
    while (!node.isLeaf) {
      const index = childFor(node, score, member)
      for (let i = 0; i < index; i++) rank += node.counts[i]!
      node = node.children[index]!
    }
    return rank + leafLowerBound(node, score, member)
  }

  /** The rank of the first key for which `test` holds (`size` when none); `test` must be monotone. */
  firstRank(test: KeyPredicate): number {
    let node = this.root
    let rank = 0
    while (!node.isLeaf) {
      // Separators are increasing keys: the first one passing the test bounds the child to enter.
      let low = 1
      let high = node.children.length
      while (low < high) {
        const middle = (low + high) >>> 1
        if (test(node.separatorScores[middle]!, node.separatorMembers[middle]!)) high = middle
        else low = middle + 1
      }
      const index = low - 1
      for (let i = 0; i < index; i++) rank += node.counts[i]!
      node = node.children[index]!
    }
    let low = 0
    let high = node.members.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (test(node.scores[middle]!, node.members[middle]!)) high = middle
      else low = middle + 1
    }
    return rank + low
  }

  /**
   * Visits `count` keys starting at rank `start` (0 ≤ start < size), ascending, or descending
   * when `reverse`; stops early at either end of the tree.
   */
  walk(start: number, count: number, reverse: boolean, visit: Visit): void {
    if (count <= 0 || start < 0 || start >= this.count) return
    let { leaf, index } = this.locate(start)
    let current: Leaf | undefined = leaf
    for (let visited = 0; visited < count && current !== undefined; visited++) {
      visit(current.members[index]!, current.scores[index]!)
      if (reverse) {
        index--
        if (index < 0) {
          current = current.previous
          index = current === undefined ? 0 : current.members.length - 1
        }
      } else {
        index++
        if (index >= current.members.length) {
          current = current.next
          index = 0
        }
      }
    }
  }

  /** Every key in order (for tests and exports; O(n)). */
  *entries(): Generator<readonly [string, number]> {
    let leaf: Leaf | undefined = this.count === 0 ? undefined : this.locate(0).leaf
    for (; leaf !== undefined; leaf = leaf.next) {
      for (let i = 0; i < leaf.members.length; i++) yield [leaf.members[i]!, leaf.scores[i]!]
    }
  }

  /**
   * Checks every structural invariant and throws (a defect) on the first broken one: sizes,
   * separators, order, leaf links and fill. For tests; O(n).
   */
  check(): void {
    const leaves: Array<Leaf> = []
    const visit = (node: Node, low: readonly [number, string] | undefined, high: readonly [number, string] | undefined, isRoot: boolean): number => {
      if (!isRoot && underflows(node)) throw new Error("order tree: underfull node")
      if (overflows(node)) throw new Error("order tree: overfull node")
      if (node.isLeaf) {
        leaves.push(node)
        for (let i = 0; i < node.members.length; i++) {
          const score = node.scores[i]!
          const member = node.members[i]!
          if (i > 0 && compareKeys(node.scores[i - 1]!, node.members[i - 1]!, score, member) >= 0) throw new Error("order tree: leaf out of order")
          if (low !== undefined && compareKeys(low[0], low[1], score, member) > 0) throw new Error("order tree: key below its separator")
          if (high !== undefined && compareKeys(score, member, high[0], high[1]) >= 0) throw new Error("order tree: key above its separator")
        }
        return node.members.length
      }
      if (node.children.length !== node.counts.length || node.children.length !== node.separatorScores.length) {
        throw new Error("order tree: branch arrays differ in length")
      }
      let total = 0
      for (let i = 0; i < node.children.length; i++) {
        const childLow = i === 0 ? low : ([node.separatorScores[i]!, node.separatorMembers[i]!] as const)
        const childHigh = i + 1 < node.children.length ? ([node.separatorScores[i + 1]!, node.separatorMembers[i + 1]!] as const) : high
        const size = visit(node.children[i]!, childLow, childHigh, false)
        if (size !== node.counts[i]) throw new Error("order tree: wrong child count")
        total += size
      }
      return total
    }
    const total = visit(this.root, undefined, undefined, true)
    if (total !== this.count) throw new Error("order tree: wrong size")
    if (!this.root.isLeaf && this.root.children.length < 2) throw new Error("order tree: root branch with one child")
    leaves.forEach((leaf, i) => {
      if (leaf.previous !== leaves[i - 1] || leaf.next !== leaves[i + 1]) throw new Error("order tree: broken leaf links")
    })
  }

  /** The leaf and position of rank `rank` (0 ≤ rank < size). */
  private locate(rank: number): Position {
    let node = this.root
    let remaining = rank
    while (!node.isLeaf) {
      let index = 0
      while (remaining >= node.counts[index]!) remaining -= node.counts[index++]!
      node = node.children[index]!
    }
    return { leaf: node, index: remaining }
  }

  /** Splits `node` (at `depth` on the last path) and its ancestors while they overflow. */
  private splitUp(node: Node, depth: number): void {
    let child = node
    let d = depth
    while (overflows(child)) {
      const half = split(child)
      if (d === 0) {
        const size = this.count
        this.root = new Branch([child, half.right], [size - half.size, half.size], [half.score, half.score], [half.member, half.member])
        return
      }
      d--
      const parent = this.pathNodes[d]!
      const index = this.pathIndexes[d]!
      parent.children.splice(index + 1, 0, half.right)
      parent.counts.splice(index + 1, 0, half.size)
      parent.counts[index]! -= half.size
      parent.separatorScores.splice(index + 1, 0, half.score)
      parent.separatorMembers.splice(index + 1, 0, half.member)
      child = parent
    }
  }

  /** Merges or evens out `node` (at `depth` on the last path) and its ancestors while they underflow. */
  private rebalanceUp(node: Node, depth: number): void {
    let child = node
    let d = depth
    while (d > 0 && underflows(child)) {
      d--
      const parent = this.pathNodes[d]!
      const index = this.pathIndexes[d]!
      const leftIndex = index > 0 ? index - 1 : index
      const rightIndex = leftIndex + 1
      const left = parent.children[leftIndex]!
      const right = parent.children[rightIndex]!
      const score = parent.separatorScores[rightIndex]!
      const member = parent.separatorMembers[rightIndex]!
      const combined = left.isLeaf ? left.members.length + (right as Leaf).members.length : left.children.length + (right as Branch).children.length
      if (combined <= (left.isLeaf ? LEAF_MAX : BRANCH_MAX)) {
        merge(left, right, score, member)
        parent.counts[leftIndex]! += parent.counts[rightIndex]!
        parent.children.splice(rightIndex, 1)
        parent.counts.splice(rightIndex, 1)
        parent.separatorScores.splice(rightIndex, 1)
        parent.separatorMembers.splice(rightIndex, 1)
      } else {
        const [newScore, newMember] = redistribute(left, right, score, member)
        parent.separatorScores[rightIndex] = newScore
        parent.separatorMembers[rightIndex] = newMember
        const total = parent.counts[leftIndex]! + parent.counts[rightIndex]!
        parent.counts[leftIndex] = sizeOf(left)
        parent.counts[rightIndex] = total - parent.counts[leftIndex]!
      }
      child = parent
    }
    while (!this.root.isLeaf && this.root.children.length === 1) this.root = this.root.children[0]!
  }
}

/** Cuts `total` items into parts of at most about `fill`, as even as possible. */
const evenParts = (total: number, fill: number): Array<readonly [number, number]> => {
  const parts = Math.max(1, Math.ceil(total / fill))
  const base = Math.floor(total / parts)
  const extra = total % parts
  const out: Array<readonly [number, number]> = []
  let start = 0
  for (let i = 0; i < parts; i++) {
    const end = start + base + (i < extra ? 1 : 0)
    out.push([start, end])
    start = end
  }
  return out
}
