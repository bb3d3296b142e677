// An intrusive doubly linked list: objects carry their ListNode, so queues never allocate.
#pragma once

#include "core/lib/assert.h"
#include "core/lib/types.h"

namespace tandem {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;
  bool linked() const { return next != nullptr; }
};

template <typename T, ListNode T::*Node>
class IntrusiveList {
 public:
  IntrusiveList() { m_head.prev = m_head.next = &m_head; }
  TANDEM_NONCOPYABLE(IntrusiveList);

  bool empty() const { return m_head.next == &m_head; }
  usize size() const { return m_size; }

  void push_back(T* item) { insert_before(&m_head, item); }
  void push_front(T* item) { insert_before(m_head.next, item); }
  // Inserts `item` before `position` (an element already in the list).
  void insert_before(T* position, T* item) { insert_before(&(position->*Node), item); }

  void remove(T* item) {
    ListNode* node = &(item->*Node);
    VERIFY(node->linked());
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = nullptr;
    --m_size;
  }
  T* front() const { return empty() ? nullptr : owner(m_head.next); }
  T* back() const { return empty() ? nullptr : owner(m_head.prev); }
  T* pop_front() {
    T* item = front();
    if (item != nullptr) remove(item);
    return item;
  }
  T* next(T* item) const {
    ListNode* node = (item->*Node).next;
    return node == &m_head ? nullptr : owner(node);
  }

  template <typename F>
  void for_each(F&& f) const {
    for (ListNode* n = m_head.next; n != &m_head;) {
      ListNode* following = n->next;
      f(owner(n));
      n = following;
    }
  }

 private:
  void insert_before(ListNode* position, T* item) {
    ListNode* node = &(item->*Node);
    VERIFY(!node->linked());
    node->next = position;
    node->prev = position->prev;
    position->prev->next = node;
    position->prev = node;
    ++m_size;
  }
  static T* owner(ListNode* node) {
    // The offset of the member within T, computed without a real object.
    const uptr offset = reinterpret_cast<uptr>(&(static_cast<T*>(nullptr)->*Node));
    return reinterpret_cast<T*>(reinterpret_cast<uptr>(node) - offset);
  }

  ListNode m_head;
  usize m_size = 0;
};

}  // namespace tandem
